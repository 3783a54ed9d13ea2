// Drives the control plane's developer portal and operator dashboard in Debian's Chromium
// (playwright-core, no browser download). Started by tests/tests/control/portal_in_a_browser.rs,
// which passes the URLs and tokens in environment variables and checks the exit status and the
// `STEP` / `RESULT` lines printed here.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing environment variable ${name}`);
  return v;
};
const CONTROL = env("CONTROL_URL");
const GATEWAY = env("GATEWAY_URL");
const OPERATOR = env("OPERATOR_TOKEN");
const VIEWER = env("VIEWER_TOKEN");
const SHOTS = env("SCREENSHOT_DIR");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(SHOTS, { recursive: true });

const results = {};
const step = (name, detail = "") => console.log(`STEP ${name} ${detail}`.trim());
const check = (cond, message) => {
  if (!cond) throw new Error(`check failed: ${message}`);
};

async function callGateway(key) {
  const r = await fetch(`${GATEWAY}/hello`, { headers: { "x-api-key": key } });
  await r.arrayBuffer();
  return r.status;
}

async function until(what, timeoutMs, fn) {
  const start = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function developer(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("dialog", () => {
    throw new Error("a dialog opened: script from a user-provided string ran");
  });
  // Sign up with a display name that is HTML: it must show as text.
  await page.goto(`${CONTROL}/portal/signup`);
  await page.getByLabel("User name").fill("ada");
  await page.getByLabel("Display name").fill("<script>alert(1)</script>");
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${CONTROL}/portal/keys`);
  const header = await page.locator("header .who").innerText();
  check(header.includes("<script>alert(1)</script>"), `display name shown as text: ${header}`);
  step("signed-up");

  await page.goto(`${CONTROL}/portal`);
  const catalogue = await page.locator("main").innerText();
  check(catalogue.includes("legacy") && catalogue.includes("sunset 2027-06-30"), `catalogue: ${catalogue}`);
  await page.screenshot({ path: `${SHOTS}/portal-catalogue.png`, fullPage: true });
  step("catalogue");

  await page.goto(`${CONTROL}/portal/keys`);
  await page.getByRole("button", { name: "Create a key" }).click();
  const key = (await page.locator("#new-key").innerText()).trim();
  check(key.startsWith("tgk_"), `a key is shown: ${key}`);
  await page.screenshot({ path: `${SHOTS}/portal-new-key.png` });
  step("key-created");

  const accepted = await until("the gateway accepts the new key", 2000, async () => (await callGateway(key)) === 200);
  results.key_accepted_ms = accepted;
  step("gateway-accepts", `${accepted}ms`);
  for (let i = 0; i < 4; i++) check((await callGateway(key)) === 200, "calls with the key pass");

  // The calls show in the usage page (meter → gateway admin API → control plane).
  let total = "";
  await until("the calls show in the usage page", 10000, async () => {
    await page.goto(`${CONTROL}/portal/usage`);
    total = await page.locator("#usage-total").innerText();
    return /^[5-9]\d* requests|^\d{2,} requests/.test(total);
  }).catch(async (e) => {
    throw new Error(`${e.message}; the page says: ${await page.locator("main").innerText()}`);
  });
  results.usage_total = total;
  check((await page.locator("svg.chart rect.bar").count()) > 0, "the usage chart has bars");
  await page.screenshot({ path: `${SHOTS}/portal.png`, fullPage: true });
  step("usage-seen", total);

  await page.goto(`${CONTROL}/portal/keys`);
  await page.getByRole("button", { name: /^Revoke key/ }).first().click();
  await page.waitForURL(`${CONTROL}/portal/keys`);
  check((await page.locator(".flash").innerText()).includes("revoked"), "revocation confirmed");
  const refused = await until("the gateway refuses the revoked key", 2000, async () => (await callGateway(key)) === 401);
  results.key_refused_ms = refused;
  await page.screenshot({ path: `${SHOTS}/portal-keys.png`, fullPage: true });
  step("gateway-refuses", `${refused}ms`);

  // Phone width: the keys page still fits.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${CONTROL}/portal/usage`);
  await page.screenshot({ path: `${SHOTS}/portal-phone.png`, fullPage: true });
  // Keyboard: Tab reaches the skip link first, then the navigation.
  await page.keyboard.press("Tab");
  check((await page.evaluate(() => document.activeElement.textContent)) === "Skip to content", "skip link first");
  await context.close();
}

async function signInDashboard(browser, token) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${CONTROL}/dashboard/signin`);
  await page.getByLabel("Management token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${CONTROL}/dashboard`);
  return { context, page };
}

async function operator(browser) {
  const { context, page } = await signInDashboard(browser, OPERATOR);
  const fleet = await page.locator("#fleet").innerText();
  check(fleet.includes("gw-browser") && fleet.includes("healthy"), `fleet: ${fleet}`);
  await page.screenshot({ path: `${SHOTS}/dashboard.png`, fullPage: true });
  step("fleet");

  // Usage: the developer's calls on route `api`, as the gateway reported them (every 5 s).
  let requests = 0;
  await until("the dashboard's usage page counts the calls", 15000, async () => {
    await page.goto(`${CONTROL}/dashboard/usage?route=api`);
    requests = parseInt(await page.locator("#usage-month .requests").innerText(), 10);
    return requests >= 5;
  }).catch(async (e) => {
    throw new Error(`${e.message}; the page says: ${await page.locator("main").innerText()}`);
  });
  check((await page.locator("#usage-month svg.chart rect.bar").count()) > 0, "the 30-day chart has bars");
  results.dashboard_api_requests = requests;
  await page.screenshot({ path: `${SHOTS}/dashboard-usage.png`, fullPage: true });
  step("dashboard-usage", `${requests} requests on api`);

  // Alerts: the spike the test reported on route `spiky` is listed with its rate.
  let alert = "";
  await until("the spike shows on the alerts page", 30000, async () => {
    await page.goto(`${CONTROL}/dashboard/alerts`);
    const table = page.locator("#alerts tbody tr", { hasText: "spiky" });
    if ((await table.count()) === 0) return false;
    alert = await table.first().innerText();
    return true;
  });
  const rate = alert.match(/(\d+)\/min/);
  check(alert.includes("requests/min") && rate, `the alert shows a rate: ${alert}`);
  results.alert_rate = parseInt(rate[1], 10);
  await page.screenshot({ path: `${SHOTS}/dashboard-alerts.png`, fullPage: true });
  step("dashboard-alerts", alert.replace(/\s+/g, " "));

  // An invalid config is refused with its TOML path.
  await page.goto(`${CONTROL}/dashboard/config`);
  const original = await page.locator("#config").inputValue();
  await page.locator("#config").fill(original.replace('upstream = "app"', 'upstream = "nowhere"'));
  await page.getByRole("button", { name: "Validate and store" }).click();
  const issues = await page.locator("#issues").innerText();
  check(/routes\[\d\]\.upstream/.test(issues), `issue at its TOML path: ${issues}`);
  await page.screenshot({ path: `${SHOTS}/dashboard-invalid.png`, fullPage: true });
  step("invalid-refused");

  // A valid change: a new route; then roll it back.
  const changed = original + '\n[[routes]]\nname = "status"\npath = "/status"\nupstream = "app"\n';
  await page.locator("#config").fill(changed);
  await page.getByLabel("Why (kept with the revision)").fill("add a status route");
  await page.getByRole("button", { name: "Validate and store" }).click();
  await page.waitForURL(`${CONTROL}/dashboard/revisions`);
  const rows = page.locator("#revisions tbody tr");
  check((await rows.first().innerText()).includes("add a status route"), "the new revision is current");
  const newest = parseInt(await rows.first().locator("th").innerText(), 10);
  await page.goto(`${CONTROL}/dashboard/revisions/${newest - 1}/diff/${newest}`);
  check((await page.locator("#diff td.ins").allInnerTexts()).some((t) => t.includes('name = "status"')), "the diff shows the added route");
  await page.screenshot({ path: `${SHOTS}/dashboard-diff.png`, fullPage: true });
  step("applied", `revision ${newest}`);

  await page.goto(`${CONTROL}/dashboard/revisions`);
  await page.getByRole("link", { name: `Roll back to ${newest - 1}…` }).click();
  await page.screenshot({ path: `${SHOTS}/dashboard-rollback-confirm.png`, fullPage: true });
  await page.getByRole("button", { name: `Yes, roll back to revision ${newest - 1}` }).click();
  await page.waitForURL(`${CONTROL}/dashboard/revisions`);
  const first = await rows.first().innerText();
  check(first.includes(`restores revision ${newest - 1}`), `rollback stored: ${first}`);
  await page.screenshot({ path: `${SHOTS}/dashboard-revisions.png`, fullPage: true });
  results.rolled_back_to = newest - 1;
  step("rolled-back", `to ${newest - 1}`);
  await context.close();
}

async function viewer(browser) {
  const { context, page } = await signInDashboard(browser, VIEWER);
  await page.goto(`${CONTROL}/dashboard/revisions`);
  check((await page.getByRole("link", { name: /Roll back/ }).count()) === 0, "no rollback links for a viewer");
  check((await page.getByRole("link", { name: /Edit the config/ }).count()) === 0, "no edit link for a viewer");
  check((await page.getByRole("button", { name: /roll back|store/i }).count()) === 0, "no change buttons for a viewer");
  // A forged POST with the viewer's own valid CSRF token: the server refuses the role.
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const forged = await context.request.post(`${CONTROL}/dashboard/revisions/1/rollback`, {
    form: { csrf },
    maxRedirects: 0,
  });
  results.viewer_forged_post = forged.status();
  check(forged.status() === 403, `viewer's forged rollback: ${forged.status()}`);
  const page2 = await context.request.get(`${CONTROL}/dashboard/config`, { maxRedirects: 0 });
  check(page2.status() === 403, `viewer's editor: ${page2.status()}`);
  step("viewer-refused", `${forged.status()}`);
  await context.close();
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  await developer(browser);
  await operator(browser);
  await viewer(browser);
  console.log(`RESULT ${JSON.stringify(results)}`);
} catch (e) {
  console.error(`FAILED ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
