// Opens the API explorer (/docs) in headless Chromium with every request off this
// server refused: it must render the contract (operations from /openapi.json)
// offline, under its Content-Security-Policy, without a CSP violation.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const BASE = process.env.DOCS_BASE;
if (!BASE) throw new Error("DOCS_BASE is not set");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const context = await browser.newContext();
  const outside = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(BASE) || url.startsWith("blob:") || url.startsWith("data:")) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const violations = [];
  // The explorer's side menu shows its maker's logo from their CDN: the CSP refuses
  // it (the image hides itself), which is the policy working, not a fault.
  const branding = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  page.on("console", (m) => {
    const text = m.text();
    if (text.includes("Content Security Policy") && !text.includes(branding)) violations.push(text);
  });
  const res = await page.goto(`${BASE}/docs`);
  assert.equal(res.status(), 200);
  const csp = res.headers()["content-security-policy"];
  assert.ok(csp && csp.includes("default-src 'none'"), `CSP header: ${csp}`);
  // Operations from the spec, rendered by the explorer.
  await page.locator("h2", { hasText: "Send an event" }).first().waitFor({ timeout: 30_000 });
  await page.locator("h2", { hasText: "Revoke a key" }).first().waitFor();
  if (process.env.CONSOLE_SCREENSHOTS) {
    await page.screenshot({ path: `${process.env.CONSOLE_SCREENSHOTS}/api-docs.png` });
  }
  assert.deepEqual(outside, [], "the explorer reached outside this server");
  assert.deepEqual(violations, [], "CSP violations");
  console.log("the API explorer rendered offline under its CSP");
} finally {
  await browser.close();
}
