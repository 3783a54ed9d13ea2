//! Charts drawn on the server as inline SVG (no script, no CDN). Bar charts: one bar per slot, a
//! part of each bar (errors) in another colour, the axis scaled to the largest bar. Line charts
//! (latency): one line per series, gaps where a slot has no value. Each chart has a title for
//! screen readers and the same figures in a table behind a `<details>`.

use maud::{Markup, html};

/// One slot of a chart.
pub struct Bar {
    /// Under the bar (every fourth label is drawn).
    pub label: String,
    /// The bar's height.
    pub value: i64,
    /// The part drawn in the second colour (at most `value`).
    pub part: i64,
}

const WIDTH: i64 = 900;
const HEIGHT: i64 = 220;
const PLOT: i64 = 180;
const LEFT: i64 = 48;

/// An SVG bar chart titled `title`, with its data table.
pub fn bars(title: &str, data: &[Bar]) -> Markup {
    let max = data.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let n = i64::try_from(data.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT) / n;
    let y = |v: i64| PLOT - v.clamp(0, max) * PLOT / max;
    html! {
        figure {
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title) {
                title { (title) }
                line x1=(LEFT) y1=(PLOT) x2=(WIDTH) y2=(PLOT) stroke="#4a5360" {}
                text x="0" y="12" { (max) }
                text x="0" y=(PLOT) { "0" }
                @for (i, b) in data.iter().enumerate() {
                    @let x = LEFT + i64::try_from(i).unwrap_or(0) * slot + 2;
                    rect.bar x=(x) y=(y(b.value)) width=((slot - 4).max(1)) height=(PLOT - y(b.value)) {
                        title { (b.label) ": " (b.value) }
                    }
                    @if b.part > 0 {
                        rect.bar.err x=(x) y=(y(b.part)) width=((slot - 4).max(1)) height=(PLOT - y(b.part)) {}
                    }
                    @if i % 4 == 0 { text x=(x) y=(PLOT + 16) { (b.label) } }
                }
            }
            figcaption.note { (title) }
            details {
                summary { "The figures as a table" }
                table {
                    thead { tr { th scope="col" { "Slot" } th scope="col" { "Value" } th scope="col" { "Errors" } } }
                    tbody { @for b in data { tr { td { (b.label) } td { (b.value) } td { (b.part) } } } }
                }
            }
        }
    }
}

/// One line of a line chart: its name and one value per slot (`None`: no data there).
pub struct Line {
    /// Shown in the legend and the table's header.
    pub name: &'static str,
    /// One value per slot.
    pub values: Vec<Option<f64>>,
}

/// An SVG line chart titled `title` over slots labelled `labels`, values in `unit`, with its
/// data table. The axis is scaled to the largest value.
pub fn lines(title: &str, unit: &str, labels: &[String], data: &[Line]) -> Markup {
    let max = data
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .fold(0.0f64, |m, v| m.max(*v));
    let max = if max > 0.0 { max } else { 1.0 };
    let n = i64::try_from(labels.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT) / n;
    let x = |i: usize| LEFT + i64::try_from(i).unwrap_or(0) * slot + slot / 2;
    #[allow(clippy::cast_possible_truncation)]
    let y = |v: f64| PLOT - ((v.clamp(0.0, max) / max) * PLOT as f64).round() as i64;
    let points = |l: &Line| {
        l.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{},{}", x(i), y(v))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        figure {
            svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title) {
                title { (title) }
                line x1=(LEFT) y1=(PLOT) x2=(WIDTH) y2=(PLOT) stroke="#4a5360" {}
                text x="0" y="12" { (fmt(max)) " " (unit) }
                text x="0" y=(PLOT) { "0" }
                @for (k, l) in data.iter().enumerate() {
                    polyline.line class={ "s" (k) } points=(points(l)) {}
                    @for (i, v) in l.values.iter().enumerate() {
                        @if let Some(v) = v {
                            circle class={ "s" (k) } cx=(x(i)) cy=(y(*v)) r="2" { title { (l.name) " " (labels.get(i).map_or("", String::as_str)) ": " (fmt(*v)) " " (unit) } }
                        }
                    }
                    text class={ "s" (k) } x=(LEFT + 8 + i64::try_from(k).unwrap_or(0) * 80) y=(HEIGHT - 4) { (l.name) }
                }
                @for (i, label) in labels.iter().enumerate() {
                    @if i % 4 == 0 { text x=(x(i) - slot / 2 + 2) y=(PLOT + 16) { (label) } }
                }
            }
            figcaption.note { (title) }
            details {
                summary { "The figures as a table" }
                table {
                    thead { tr { th scope="col" { "Slot" } @for l in data { th scope="col" { (l.name) " (" (unit) ")" } } } }
                    tbody { @for (i, label) in labels.iter().enumerate() { tr {
                        td { (label) }
                        @for l in data { td { @match l.values.get(i).copied().flatten() { Some(v) => (fmt(v)), None => "–" } } }
                    } } }
                }
            }
        }
    }
}

/// A value with at most one decimal below 10, none above.
pub fn fmt(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scaled() {
        let svg = bars(
            "t<script>",
            &[
                Bar {
                    label: "<b>".into(),
                    value: 10,
                    part: 5,
                },
                Bar {
                    label: "x".into(),
                    value: 0,
                    part: 0,
                },
            ],
        )
        .into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(
            svg.contains("height=\"180\""),
            "tallest bar fills the plot: {svg}"
        );
        assert!(
            svg.contains("height=\"90\""),
            "half the bar is errors: {svg}"
        );
    }

    #[test]
    fn lines_skip_empty_slots_and_scale_to_the_top() {
        let labels = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let svg = lines(
            "latency",
            "ms",
            &labels,
            &[Line {
                name: "p99",
                values: vec![Some(10.0), None, Some(5.0)],
            }],
        )
        .into_string();
        assert!(svg.contains("points=\"190,0 758,90\""), "{svg}");
        assert!(svg.contains("<td>–</td>"), "{svg}");
    }
}
