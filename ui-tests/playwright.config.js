/**
 * Galata's Playwright configuration, adapted to this project's CI: Debian's Chromium (Playwright's
 * own browser download is not available), several workers against one shared JupyterLab server, no
 * video or trace (both need downloads). Screenshots the tests take on purpose go to
 * ui-tests/test-results/screenshots/.
 *
 * Workers: a test mostly waits (the replay in the kernel, page loads), so tests run side by side,
 * each in its own server folder (Galata's tmpPath) with its own notebook and page load (in its
 * worker's browser tab, tests/tab.ts), most of them on their worker's kernel, reset for each
 * (tests/kernel.ts); settings and layout are mocked per test by Galata. UI_TESTS_WORKERS=1 runs them one after the other.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PYTHON = process.env.UI_TESTS_PYTHON || '../.venv/bin/python';
// another checkout's tests may hold 8888 on a shared machine
const PORT = process.env.UI_TESTS_PORT || '8888';
// measured on the 2-core machine (make ui-test-cpu): with each test's load in its worker's tab, 2
// workers took 282 and 301 CPU-s in 4.1 and 4.5 min, 3 took 295 in 4.7 (a kernel start, browser and
// worker more)
const WORKERS = Number(process.env.UI_TESTS_WORKERS || '2');

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: './test-results',
  reporter: [['list']],
  workers: WORKERS,
  // one test at a time per worker, spread over the workers (not one spec file per worker: the
  // sidebar's nine tests would then be the critical path)
  fullyParallel: true,
  retries: 0,
  // a diagnosis replays the failing cell under torch hooks, with other tests' kernels starting beside
  // it: generous on a 2-core CI machine
  timeout: 180000,
  expect: { timeout: 30000 },
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${PORT}`,
    viewport: { width: 1400, height: 1000 },
    trace: 'off',
    video: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Debian's wrapper (/usr/bin/chromium, /etc/chromium.d/default-flags) turns GPU
        // rasterization on; with no GPU, the GPU process then rasterizes every frame in software
        // GL, where the renderer's own raster threads draw the same pixels more cheaply
        '--disable-gpu-rasterization'
      ]
    }
  },
  webServer: {
    command: `${PYTHON} -m jupyterlab --config jupyter_server_test_config.py --port ${PORT}`,
    url: `http://127.0.0.1:${PORT}/lab`,
    timeout: 120000,
    reuseExistingServer: !process.env.CI
  }
};
