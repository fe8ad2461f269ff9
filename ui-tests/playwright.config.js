/**
 * Galata's Playwright configuration, adapted to this project's CI: Debian's Chromium (Playwright's
 * own browser download is not available), one worker and one shared JupyterLab server, no video or
 * trace (both need downloads). Screenshots the tests take on purpose go to ui-tests/artifacts/.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PYTHON = process.env.UI_TESTS_PYTHON || '../.venv/bin/python';
// another checkout's tests may hold 8888 on a shared machine
const PORT = process.env.UI_TESTS_PORT || '8888';

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: './test-results',
  reporter: [['list']],
  workers: 1,
  fullyParallel: false,
  retries: 0,
  // a diagnosis replays the failing cell under torch hooks: generous on a 2-core CI machine
  timeout: 120000,
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
        '--disable-sync'
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
