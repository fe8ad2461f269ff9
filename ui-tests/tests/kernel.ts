/**
 * One kernel per Playwright worker, for the tests whose subject is what a diagnosis shows, not a
 * kernel's life. A kernel's start is most of a test's CPU on the 2-core machine (torch's import, then
 * `torch._dynamo`'s at `%load_ext`, then the background warm-up: about 9 of its 12 CPU-seconds; the
 * diagnosis itself is about 2; a fork of the server's zygote, kernel_zygote.py, starts in about 3),
 * so each test opens its own notebook in its own server folder, as before, but the notebook's
 * session is made on the worker's kernel, which is first reset to what a fresh kernel of that folder
 * would be:
 *
 * - `%unload_ext inplace_magic` (its hooks, magics, `%gradcheck on` and the sidebar's comm target go:
 *   the notebook's own `%load_ext` sets them up again);
 * - the kernel's records of what it showed, which outlive the extension because they are the
 *   process's (the diagnoses it issued and dismissed, the last panel shown, the last diagnosis): the
 *   sidebar asks for them when it connects, so they must not carry one test's diagnoses into the next;
 * - `reset(new_session=True)`: an empty namespace, the execution count back to 1 (the tests read
 *   "cell [2]" and "Cell In[3]"), a new history session;
 * - the working folder: the test's own.
 *
 * What stays is what a process caches for itself: modules imported, torch's operator tables, the
 * warm-up done. The tests of a kernel's life keep a kernel of their own (the restart, Notebook 7's
 * page, B5's timing of a first diagnosis: `test.use({ shareKernel: false })`). Where the kernel is
 * shared, this module's `test` turns Galata's kernel and session mocks off: they shut down, at each
 * test's end, every kernel and session its page used.
 */
import { expect, type Page } from '@playwright/test';

import { startCpuRecord } from './cpu';
import { test as base } from './tab';

/** The worker's kernel, as a test gets it: attach a notebook to it with {@link attachNotebook}. */
export interface ISharedKernel {
  id: string;
}

/** Run in the worker's kernel (silently: no execution count) before each test that shares it. */
function resetCode(folder: string): string {
  return `
def __ui_tests_reset(folder):
    import os
    ip = get_ipython()
    if "inplace_magic" in ip.extension_manager.loaded:
        ip.extension_manager.unload_extension("inplace_magic")
    import inplace_magic.ipython.display as display
    import inplace_magic.panel.issued as issued
    import inplace_magic.pipeline.kernel as replayer
    issued.ISSUED.__init__()
    display._last.clear()
    replayer._LATEST  # a name that moved fails the reset here, instead of leaving a record behind
    replayer._LATEST = None
    ip.reset(new_session=True)
    root = os.environ.setdefault("UI_TESTS_SERVER_ROOT", os.getcwd())
    os.chdir(os.path.join(root, folder))
__ui_tests_reset(${JSON.stringify(folder)})
`;
}

/**
 * Reset the worker's kernel for the test of `folder`, then make the session of the notebook `path`
 * on it: JupyterLab, opening the notebook, finds the session by its path and starts no kernel.
 */
export async function attachNotebook(
  page: Page,
  kernel: ISharedKernel,
  folder: string,
  path: string
): Promise<void> {
  const reply = await page.evaluate(
    async ({ id, code }) => {
      const app = (window as any).jupyterapp;
      const connection = app.serviceManager.kernels.connectTo({ model: { id, name: 'python3' } });
      try {
        const done = await connection.requestExecute({ code, silent: true, store_history: false }).done;
        const content = done.content;
        return content.status === 'ok' ? 'ok' : `${content.ename}: ${content.evalue}`;
      } finally {
        connection.dispose();
      }
    },
    { id: kernel.id, code: resetCode(folder) }
  );
  expect(reply, 'the reset of the worker kernel').toBe('ok');
  const name = path.split('/').pop()!;
  const session = await page.request.post('api/sessions', {
    data: { path, name, type: 'notebook', kernel: { id: kernel.id } }
  });
  expect(session.status(), await session.text()).toBe(201);
}

/** The worker's kernel once started, for the CPU record of each test (tests/cpu.ts). */
let workerKernelId: string | undefined;

export const test = base.extend<
  { kernel: ISharedKernel; shareKernel: boolean; cpuRecord: void },
  { workerKernel: string }
>({
  // first in, last out: the record covers the test's whole set-up and tear-down
  cpuRecord: [
    async ({}, use, testInfo) => {
      const stop = startCpuRecord(() => workerKernelId);
      await use();
      stop(testInfo.titlePath.slice(1).join(' > '));
    },
    { auto: true }
  ],
  workerKernel: [
    async ({ playwright }, use, workerInfo) => {
      const request = await playwright.request.newContext({ baseURL: workerInfo.project.use.baseURL });
      // started in the server's root folder (path ''); each test's reset moves it to the test's
      const started = await request.post('api/kernels', { data: { name: 'python3', path: '' } });
      expect(started.status(), await started.text()).toBe(201);
      const { id } = (await started.json()) as { id: string };
      workerKernelId = id;
      await use(id);
      await request.delete(`api/kernels/${id}`);
      await request.dispose();
    },
    { scope: 'worker' }
  ],
  // `test.use({ shareKernel: false })`: the tests of a kernel's life. They still use this `test`, so
  // that every test runs in the same workers (a test type of its own would need workers, and
  // browsers, of its own).
  shareKernel: [true, { option: true }],
  kernel: async ({ workerKernel, shareKernel }, use) => {
    expect(shareKernel, 'a test with a kernel of its own asked for the worker kernel').toBe(true);
    await use({ id: workerKernel });
  },
  // off where the kernel is shared; the server lists every test's sessions then (each on its own
  // notebook path)
  kernels: async ({ kernels, shareKernel }, use) => {
    await use(shareKernel ? null : kernels);
  },
  sessions: async ({ sessions, shareKernel }, use) => {
    await use(shareKernel ? null : sessions);
  }
});
