/**
 * One browser tab per Playwright worker, navigated afresh for each test. A JupyterLab page load is
 * the browser's largest cost here: about 5.5 CPU-seconds in a new browser context (a new renderer
 * process, which compiles all of JupyterLab's JavaScript again), about 3 in a tab that already
 * loaded it (the renderer and its compiled code stay; measured on the 2-core machine beside
 * pytest). Galata gives each test a new context; this gives each test the worker's tab instead, and
 * Galata's own page set-up runs on it as before (`galata.initTestPage`: its mocked settings, state,
 * config and user, in memory for this test only, then the load of the test's folder).
 *
 * What keeps the tests apart, as a new context would:
 * - the page: every test loads JupyterLab anew (Galata's `goto`, or the test's own), so no document,
 *   script state, widget or connection of the previous test's page survives; at each test's end the
 *   tab leaves the page for about:blank (accepting the unsaved-changes prompt a dirty notebook
 *   raises), so the old page's kernel connections close before the next test resets the kernel;
 * - Galata's mocks: its routes are removed at each test's end (as its own page fixture does) and
 *   made anew, with fresh in-memory settings, state and config, by the next test's set-up;
 * - what the browser keeps per origin: cookies and every storage (local, session, IndexedDB, cache
 *   storage, service workers) are cleared at each test's end;
 * - the window's size: each test sets its own (`viewport`, from the config or the test's `use`).
 * What is shared is what a page load cannot change: the browser's compiled code, the renderer
 * process, and the HTTP cache of the server's static files, which the server marks immutable (the
 * API's answers are asked for with `no-store`; Galata's mocks answer theirs: tests/routes.ts).
 */
import { galata, test as base } from '@jupyterlab/galata';
import type { Dialog, Page } from '@playwright/test';

import { NarrowRoutes, withNarrowRoutes } from './routes';

/** Leave the test's page: unroute, go to about:blank, and clear what the origin kept. */
async function leave(tab: Page, origin: string): Promise<void> {
  await tab.unrouteAll({ behavior: 'ignoreErrors' });
  if (tab.url().startsWith(origin)) {
    // the session storage lives in the tab itself, across loads: cleared while the page is its origin's
    await tab.evaluate(() => window.sessionStorage.clear()).catch(() => undefined);
  }
  // JupyterLab asks before leaving a page with unsaved changes; a new context would just close it
  const leaveAnyway = (dialog: Dialog): Promise<void> =>
    dialog.type() === 'beforeunload' ? dialog.accept() : dialog.dismiss();
  tab.on('dialog', leaveAnyway);
  try {
    await tab.goto('about:blank');
  } finally {
    tab.off('dialog', leaveAnyway);
  }
  const cdp = await tab.context().newCDPSession(tab);
  try {
    await cdp.send('Storage.clearDataForOrigin', {
      origin,
      storageTypes: 'cookies,local_storage,indexeddb,cache_storage,service_workers,file_systems,websql'
    });
  } finally {
    await cdp.detach();
  }
  await tab.context().clearCookies();
}

export const test = base.extend<{}, { workerTab: Page }>({
  workerTab: [
    async ({ browser }, use, workerInfo) => {
      const context = await browser.newContext({ baseURL: workerInfo.project.use.baseURL });
      await use(await context.newPage());
      await context.close();
    },
    { scope: 'worker' }
  ],
  // Galata's page fixture (fixtures.js), on the worker's tab instead of a new context's page
  page: async (
    {
      workerTab,
      viewport,
      baseURL,
      appPath,
      autoGoto,
      kernels,
      mockConfig,
      mockSettings,
      mockState,
      mockUser,
      resetWorkspace,
      sessions,
      terminals,
      tmpPath,
      waitForApplication
    },
    use
  ) => {
    if (viewport) {
      await workerTab.setViewportSize(viewport);
    }
    // Galata's mocks on the API paths only, so that the browser's cache keeps the static files
    // (tests/routes.ts)
    const routes = new NarrowRoutes(workerTab);
    try {
      await use(
        await galata.initTestPage(
          appPath,
          autoGoto,
          baseURL!,
          mockConfig,
          mockSettings,
          mockState,
          mockUser,
          withNarrowRoutes(workerTab, routes),
          sessions,
          terminals,
          tmpPath,
          waitForApplication,
          kernels,
          resetWorkspace
        )
      );
    } finally {
      await routes.dispose();
      await leave(workerTab, new URL(baseURL!).origin);
    }
  }
});
