import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['src/**/__tests__/**/*.test.ts'],
    setupFiles: ['src/panel/__tests__/setup.ts', 'src/lab/__tests__/setup.ts'],
    // JupyterLab's packages ship ESM that imports CSS and browser globals: let vite transform them
    server: {
      deps: { inline: [/@jupyter\//, /@jupyterlab\//, /@microsoft\/fast/, /yjs/, /y-protocols/, /lib0/] }
    }
  }
});
