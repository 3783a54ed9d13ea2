//! Bar charts drawn on the server as inline SVG (no script, no CDN): one bar per slot, a part
//! of each bar (errors) in another colour, the axis scaled to the largest bar. Each chart has a
//! title for screen readers and the same figures in a table behind a `<details>`.

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
}
