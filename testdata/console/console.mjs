// Drives Herald's web console in headless Chromium (Debian's
// /usr/bin/chromium) through playwright-core. Run by
// cmd/herald/console_browser_test.go against a real `herald serve` it has
// seeded; it exits non-zero, saying why, on the first failed check.
//
// Environment: CONSOLE_URL (the server's base URL), CONSOLE_ADMIN_TOKEN,
// CONSOLE_TENANT_TOKEN (a token of tenant CONSOLE_TENANT), CONSOLE_MESSAGE_ID
// (a failed message of the default tenant), CONSOLE_ENDPOINT_ID (its
// endpoint), CONSOLE_TENANT_MESSAGE_ID (the tenant's message),
// CONSOLE_SCREENSHOTS (a folder for screenshots), CHROMIUM (the browser).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('CONSOLE_URL');
const origin = new URL(base).origin;
const adminToken = env('CONSOLE_ADMIN_TOKEN');
const tenant = env('CONSOLE_TENANT');
const tenantToken = env('CONSOLE_TENANT_TOKEN');
const messageID = env('CONSOLE_MESSAGE_ID');
const endpointID = env('CONSOLE_ENDPOINT_ID');
const tenantMessageID = env('CONSOLE_TENANT_MESSAGE_ID');
const shots = env('CONSOLE_SCREENSHOTS');
mkdirSync(shots, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// Every request any page makes, to check none leaves the server's origin.
const foreign = [];
let step = 'start';

async function newPage(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20000); // generous: CI runs other packages alongside
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith('data:') && new URL(u).origin !== origin) foreign.push(`${name}: ${u}`);
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(page, token) {
  await page.goto(`${base}/ui/`);
  check(page.url().endsWith('/ui/sign-in'), `an unsigned visit lands on the sign-in page, not ${page.url()}`);
  check(await page.locator('input[type=password][name=token]').count() === 1, 'the sign-in page has one password input named token');
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/ui/`);
}

try {
  // The admin signs in; a wrong token is refused first.
  step = 'admin sign-in';
  const admin = await newPage('admin');
  await admin.goto(`${base}/ui/sign-in`);
  await admin.fill('input[name=token]', 'not-the-token');
  await admin.click('button[type=submit]');
  check(await admin.locator('.problem').count() === 1, 'a wrong token shows a problem');
  await signIn(admin, adminToken);
  check(await admin.locator('#backlog').count() === 1, 'the admin overview shows the backlog');
  await admin.waitForFunction(() => Number(document.getElementById('chart').dataset.samples || 0) >= 2);
  check(/^\d+\.\d$/.test(await admin.textContent('#accepted-rate')), 'the live chart shows the accepted rate');
  await shot(admin, 'admin-overview');

  // The failed message: find it by id, see its attempts, retry it, and
  // see a new attempt after reloading.
  step = 'retry';
  await admin.goto(`${base}/ui/messages?status=failed`);
  check(await admin.locator(`#messages tr[data-id="${messageID}"]`).count() === 1, 'the failed message is in the failed list');
  await shot(admin, 'admin-messages');
  await admin.fill('input[name=id]', messageID);
  await admin.click('form:has(input[name=id]) button[type=submit]');
  await admin.waitForURL(new RegExp(`/ui/messages/${messageID}`));
  check((await admin.textContent('#message-status')).trim() === 'failed', 'the message is failed');
  const before = await admin.locator('tr.attempt').count();
  check(before > 0, 'the failed message shows its attempts');
  check((await admin.locator('tr.attempt').first().textContent()).includes('500'), 'an attempt shows its status code 500');
  await shot(admin, 'admin-message-failed');
  await admin.click('#retry');
  check((await admin.textContent('.flash')).includes('Re-queued 1'), 'the retry re-queued the delivery');
  const deadline = Date.now() + 20000;
  let after = before;
  while (after <= before && Date.now() < deadline) {
    await admin.reload();
    after = await admin.locator('tr.attempt').count();
  }
  check(after > before, `a new attempt shows after reloading (${before} attempts before, ${after} after)`);
  await shot(admin, 'admin-message-retried');

  // Disable, then enable, the endpoint.
  step = 'endpoints';
  await admin.goto(`${base}/ui/endpoints`);
  const row = admin.locator(`#endpoints tr[data-id="${endpointID}"]`);
  check((await row.locator('.state').textContent()).trim() === 'enabled', 'the endpoint starts enabled');
  await row.locator('button.disable').click();
  await row.locator('button.enable').waitFor();
  check((await row.locator('.state').textContent()).trim() === 'disabled', 'the endpoint is disabled');
  await shot(admin, 'admin-endpoint-disabled');
  await row.locator('button.enable').click();
  await row.locator('button.disable').waitFor();
  check((await row.locator('.state').textContent()).trim() === 'enabled', 'the endpoint is enabled again');

  // A POST without the CSRF token, with the session cookie, is refused.
  step = 'csrf';
  const status = await admin.evaluate(async (id) => {
    const res = await fetch(`/ui/endpoints/${id}/disable`, { method: 'POST', body: new URLSearchParams({ tenant: 'default' }) });
    return res.status;
  }, endpointID);
  check(status === 403, `a POST without the CSRF token answers 403, not ${status}`);
  const forged = await admin.evaluate(async (id) => {
    const res = await fetch(`/ui/endpoints/${id}/disable`, { method: 'POST', body: new URLSearchParams({ tenant: 'default', csrf: 'forged' }) });
    return res.status;
  }, endpointID);
  check(forged === 403, `a POST with a wrong CSRF token answers 403, not ${forged}`);
  await admin.reload();
  check((await row.locator('.state').textContent()).trim() === 'enabled', 'the refused POSTs changed nothing');

  // The cluster page.
  step = 'cluster';
  await admin.goto(`${base}/ui/cluster`);
  check(await admin.locator('#nodes tbody tr').count() === 1, 'the cluster page lists the node');
  await shot(admin, 'admin-cluster');

  // The tenant's portal: its messages only.
  step = 'tenant';
  const portal = await newPage('tenant');
  await signIn(portal, tenantToken);
  check((await portal.textContent('#who-tenant')).trim() === tenant, 'the portal names its tenant');
  check(await portal.locator('a[href="/ui/cluster"]').count() === 0, 'the portal has no cluster link');
  check(await portal.locator('#backlog').count() === 0, 'the portal overview shows no cluster backlog');
  await portal.goto(`${base}/ui/messages`);
  const ids = await portal.locator('#messages tr[data-id]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  check(ids.length === 1 && ids[0] === tenantMessageID, `the portal lists only the tenant's message, not ${ids}`);
  await portal.goto(`${base}/ui/messages?tenant=default`);
  const ids2 = await portal.locator('#messages tr[data-id]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  check(ids2.length === 1 && ids2[0] === tenantMessageID, `?tenant= does not reach another tenant (${ids2})`);
  let res = await portal.goto(`${base}/ui/messages/${messageID}`);
  check(res.status() === 404, `another tenant's message answers 404, not ${res.status()}`);
  res = await portal.goto(`${base}/ui/cluster`);
  check(res.status() === 403, `the cluster page answers 403 to a tenant, not ${res.status()}`);
  await portal.goto(`${base}/ui/endpoints`);
  check(await portal.locator(`#endpoints tr[data-id="${endpointID}"]`).count() === 0, "the portal does not list another tenant's endpoint");
  check(await portal.locator('#endpoints tr[data-id]').count() === 1, 'the portal lists its own endpoint');
  await portal.locator('#endpoints button.rotate').click();
  check((await portal.textContent('#secret')).trim().startsWith('whsec_'), 'rotating shows the new secret');
  await shot(portal, 'tenant-rotated-secret');
  await portal.goto(`${base}/ui/messages/${tenantMessageID}`);
  check((await portal.textContent('#message-id')).trim() === tenantMessageID, 'the portal opens its own message');
  await shot(portal, 'tenant-message');

  // Sign-out ends the session.
  step = 'sign-out';
  await portal.click('header form button');
  await portal.waitForURL(`${base}/ui/sign-in`);
  await portal.goto(`${base}/ui/messages`);
  check(portal.url().endsWith('/ui/sign-in'), 'after signing out, pages lead to the sign-in page');

  step = 'origin';
  check(foreign.length === 0, `requests left the server's origin: ${foreign.join(', ')}`);
  console.log('console browser test: ok');
} catch (err) {
  console.error(`console browser test, step ${step}: ${err.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
