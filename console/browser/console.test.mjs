// Drives the console in headless Chromium: a customer opens a console link, sees the
// endpoint and a failed delivery with its attempts, replays it and sees the new
// successful attempt, adds a second endpoint through the form (its secret shown once)
// and sends it a test event, whose attempt appears live (the islands' wasm build); another tenant's delivery is a 404; an operator signs
// in, replays the dead-letter queue and sees it drain, and looks at tenants and keys. Settings come from the
// environment (the Rust test `console::the_console_works_in_a_real_browser` sets them).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("CONSOLE_BASE");
const shots = process.env.CONSOLE_SCREENSHOTS;
const PATIENCE_MS = 30_000;

async function shot(page, name) {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

// Reloads until `text` shows on the page (the console is server-rendered).
async function reloadUntil(page, text) {
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    if ((await page.content()).includes(text)) return;
    if (Date.now() > deadline) throw new Error(`"${text}" never appeared on ${page.url()}`);
    await page.waitForTimeout(300);
    await page.reload();
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  // Customer.
  const customer = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await customer.newPage();
  await page.goto(env("CONSOLE_LINK"));
  await shot(page, "open-link");
  const [opened] = await Promise.all([
    page.waitForNavigation(),
    page.click("#open-console"),
  ]);
  assert.equal(opened.status(), 200);
  assert.match(page.url(), /\/console\/endpoints$/);
  const csp = opened.headers()["content-security-policy"];
  assert.ok(csp && csp.includes("default-src 'none'"), `CSP header: ${csp}`);
  await page.getByText(env("ENDPOINT_URL")).first().waitFor();
  // Health at a glance: 3 attempts, none a 2xx, the last error shown.
  await page.getByText("0.0 %").first().waitFor();
  await page.getByText("HTTP 500").first().waitFor();
  await shot(page, "endpoints");

  await page.click("text=Events");
  await page.locator("#events").waitFor();
  await shot(page, "events");

  await page.goto(`${BASE}/console/deliveries`);
  await page.getByText(env("FAILED_DELIVERY")).first().waitFor();
  await shot(page, "deliveries");

  await page.goto(`${BASE}/console/deliveries/${env("FAILED_DELIVERY")}`);
  await page.getByText("Attempt 1").waitFor();
  await page.getByText("HTTP 500").first().waitFor();
  await shot(page, "delivery-failed");
  await page.click("#replay");
  await page.getByText("Attempt 2").waitFor({ timeout: PATIENCE_MS });
  await page.getByText("HTTP 200").first().waitFor();
  await shot(page, "delivery-replayed");

  // A second endpoint through the form, then a test event to it.
  await page.goto(`${BASE}/console/endpoints`);
  // Each endpoint's success sparkline: 12 five-minute bins, the ones with attempts drawn.
  const spark = page.locator("svg.sparkline").first();
  assert.equal(await spark.getAttribute("data-points"), "12");
  assert.ok((await spark.locator("polyline, circle").count()) > 0, "the attempts so far are drawn");
  await shot(page, "endpoints-sparklines");
  await page.click("#add-endpoint");
  await page.fill("input[name=url]", env("SLOW_ENDPOINT_URL"));
  await page.fill("input[name=description]", "Order notifications");
  await page.fill("input[name=event_types]", "order.*");
  await page.fill("input[name=rate_limit_per_second]", "20");
  await shot(page, "endpoint-new");
  await page.click("button[type=submit].primary");
  const secret = await page.textContent("#secret code");
  assert.match(secret, /^whsec_/, "the new endpoint's secret is shown");
  await shot(page, "endpoint-secret");
  await page.click("a.button");
  await page.getByText("Order notifications").first().waitFor();
  assert.ok(!(await page.content()).includes(secret), "the secret is shown only once");
  // The endpoint's charts: attempts by outcome, failure rate and latency, per minute
  // over the last hour and per 15 minutes over the last day.
  assert.equal(await page.locator('#endpoint-hour svg.chart[data-points="60"]').count(), 3);
  assert.equal(await page.locator('#endpoint-day svg.chart[data-points="96"]').count(), 3);
  await shot(page, "endpoint");
  // The slow endpoint answers after two seconds: the page opens with no attempt,
  // its island (hydrated from the wasm build) sees the attempt land and reloads the
  // page by itself; the test never reloads it.
  await page.click("#send-test");
  await page.waitForURL(/\/console\/deliveries\//);
  await page.getByText("No attempt yet").waitFor();
  await page.waitForFunction(() => document.documentElement.dataset.hydrated === "true");
  await page.getByText("Attempt 1").waitFor({ timeout: PATIENCE_MS });
  await page.getByText("HTTP 200").first().waitFor();
  await page.getByText("hookrelay.test").first().waitFor();

  const other = await page.goto(`${BASE}/console/deliveries/${env("OTHER_DELIVERY")}`);
  assert.equal(other.status(), 404, "another tenant's delivery is not found");
  const notAdmin = await page.goto(`${BASE}/console/admin/dead`);
  assert.match(notAdmin.url(), /\/console\/login$/, "a tenant session is no operator session");

  // Operator.
  const operator = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const admin = await operator.newPage();
  await admin.goto(`${BASE}/console/admin/dead`);
  assert.match(admin.url(), /\/console\/login$/);
  await shot(admin, "login");
  await admin.fill("input[name=token]", env("ADMIN_TOKEN"));
  await admin.click("button[type=submit].primary");
  await admin.waitForURL(/\/console\/admin\/dead$/);
  assert.equal(await admin.textContent("#dead-total"), env("DEAD_COUNT"));
  await shot(admin, "dead-letters");
  await admin.click("#replay-all");
  await admin.waitForURL(/\/console\/admin\/jobs\//);
  await admin.waitForFunction(() => document.documentElement.dataset.hydrated === "true");
  await admin.locator("#live-status.done").waitFor({ timeout: PATIENCE_MS });
  assert.equal(await admin.textContent("#live-count"), env("DEAD_COUNT"));
  await shot(admin, "replay-job");
  await admin.goto(`${BASE}/console/admin/dead`);
  await reloadUntil(admin, "Nothing dead");
  await admin.goto(`${BASE}/console/admin/fleet`);
  await admin.getByText("dispatchers connected").waitFor();
  // The fleet's charts: the three of attempts, then backlog and lag; the attempts
  // of this test are drawn as bars.
  assert.equal(await admin.locator('#fleet-hour svg.chart[data-points="60"]').count(), 5);
  assert.equal(await admin.locator('#fleet-day svg.chart[data-points="96"]').count(), 5);
  assert.ok((await admin.locator("#fleet-hour svg.chart").first().locator("rect").count()) > 3,
    "attempt bars beside the legend");
  await shot(admin, "fleet");
  await admin.click("text=Tenants");
  await admin.locator("#tenants").waitFor();
  await shot(admin, "tenants");
  await admin.click("text=API keys");
  await admin.locator("#api-keys").waitFor();
  await shot(admin, "api-keys");
  console.log("console browser test passed");
} finally {
  await browser.close();
}
