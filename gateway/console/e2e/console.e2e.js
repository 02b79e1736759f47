// End-to-end test of the operator console in Debian's chromium, driven by
// playwright-core. Run by gateway/console_e2e_test.go, which starts the
// gateway and two fake Ollama backends and answers this script's requests
// on stdin: it prints a command line ("traffic", "kill") and waits for "ok".
"use strict";
const { chromium } = require("playwright-core");
const readline = require("readline");
const path = require("path");

const base = process.env.GATEWAY_URL;
const adminKey = process.env.ADMIN_KEY;
const plainKey = process.env.PLAIN_KEY;
const shots = process.env.SHOTS;
const backends = JSON.parse(process.env.BACKENDS); // [{name, model}]
const consolePath = process.env.CONSOLE_PATH || "/ui";

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(cmd) {
  process.stdout.write("CMD " + cmd + "\n");
  const { value } = await lines.next();
  if (value !== "ok") throw new Error(cmd + ": the test answered " + value);
}
function check(cond, msg) { if (!cond) throw new Error(msg); }
function step(msg) { process.stdout.write("STEP " + msg + "\n"); }

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(15000);
    const outside = [];
    const problems = [];
    page.on("request", (r) => { if (!r.url().startsWith(base + "/")) outside.push(r.url()); });
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => { if (m.type() === "error" && !/401|403/.test(m.text())) problems.push("console: " + m.text()); });
    page.on("dialog", (d) => d.accept());

    step("a plain key gets the sign-in form, never data");
    await page.goto(base + consolePath);
    await page.waitForSelector("#signin", { state: "visible" });
    await page.fill("#key", plainKey);
    await page.click("#signin-form button[type=submit]");
    await page.waitForFunction(() => /not an admin key/.test(document.getElementById("signin-error").textContent));
    check(await page.isHidden("#dash"), "the dashboard shows after a plain key");
    const cookies = await context.cookies();
    check(cookies.length === 0, "a plain key got a cookie: " + JSON.stringify(cookies));

    step("sign in with the admin key, by keyboard");
    await page.focus("#key");
    await page.keyboard.type(adminKey);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#dash", { state: "visible" });
    const [cookie] = await context.cookies();
    check(cookie && cookie.httpOnly && cookie.sameSite === "Strict", "session cookie flags: " + JSON.stringify(cookie));
    check(!cookie.value.includes(adminKey), "the cookie holds the key");

    step("both backends up, with their models");
    for (const b of backends) {
      const row = `tr[data-backend="${b.name}"]`;
      await page.waitForSelector(row + ' td[data-state="up"]');
      await page.waitForFunction(([sel, m]) => {
        const td = document.querySelector(sel + " td.models");
        return td && td.textContent.includes(m);
      }, [row, b.model]);
    }

    step("request counts update after traffic; the model shows loaded");
    const before = Number((await page.textContent("#total-requests")).replace(/\D/g, ""));
    await ask("traffic");
    await page.waitForFunction((n) => Number(document.getElementById("total-requests").textContent.replace(/\D/g, "")) >= n,
      before + 5);
    await page.waitForFunction((sel) => {
      const td = document.querySelector(sel + " td:last-child");
      return td && /llama3\.2:latest \(.* VRAM, until /.test(td.textContent);
    }, `tr[data-backend="${backends[0].name}"]`);
    await page.screenshot({ path: path.join(shots, "console.png"), fullPage: true });

    step("mint a key through the page; it works, then revoke it");
    await page.click("#mint");
    await page.waitForSelector("#minted", { state: "visible" });
    const id = (await page.textContent("#minted-id")).trim();
    const key = (await page.textContent("#minted-key")).trim();
    check(id.length > 0 && key.length > 20, "minted id/key: " + id);
    await page.waitForSelector(`tr[data-key="${id}"]`);
    let res = await fetch(base + "/api/tags", { headers: { Authorization: "Bearer " + key } });
    check(res.status === 200, "the minted key is refused: " + res.status);
    await page.waitForFunction((i) => {
      const tr = document.querySelector(`tr[data-key="${i}"]`);
      return tr && /^1 request, /.test(tr.cells[4].textContent) && / ago$/.test(tr.cells[5].textContent);
    }, id);
    await page.screenshot({ path: path.join(shots, "console-minted.png"), fullPage: true });
    await page.click(`tr[data-key="${id}"] button`);
    await page.waitForSelector(`tr[data-key="${id}"]`, { state: "detached" });
    await page.waitForFunction((i) => document.getElementById("status").textContent.includes("Key " + i + " revoked"), id);
    res = await fetch(base + "/api/tags", { headers: { Authorization: "Bearer " + key } });
    check(res.status === 401, "the revoked key still works: " + res.status);

    step("a killed backend turns down");
    const gone = backends[1].name;
    await ask("kill");
    await page.waitForSelector(`tr[data-backend="${gone}"] td[data-state="down"]`, { timeout: 15000 });
    await page.screenshot({ path: path.join(shots, "console-down.png"), fullPage: true });

    step("phone width");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(shots, "console-phone.png"), fullPage: true });

    check(outside.length === 0, "the page loaded from outside the gateway: " + outside.join(", "));
    check(problems.length === 0, "problems in the page: " + problems.join("; "));
    step("done");
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
})().then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
