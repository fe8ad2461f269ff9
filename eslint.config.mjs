// ESLint for the TypeScript (src/) and the build scripts: the JupyterLab extension template's
// configuration (typescript-eslint's recommended rules, prettier as a rule, its naming and style
// rules) in ESLint's flat form, plus this project's own: no `any`, no console.
import js from '@eslint/js';
import prettierRecommended from 'eslint-plugin-prettier/recommended';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // every virtual environment (.venv, .venv-libraries: gigabytes of vendored JavaScript) and build output
  {
    ignores: [
      'lib/',
      'node_modules/',
      'inplace_magic/',
      'ui-tests/',
      '.venv*/',
      'coverage/',
      'build/',
      'dist/'
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettierRecommended,
  {
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/naming-convention': [
        'error',
        { selector: 'interface', format: ['PascalCase'], custom: { regex: '^I[A-Z]', match: true } }
      ],
      '@typescript-eslint/no-unused-vars': ['warn', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-use-before-define': 'off',
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error',
      'no-console': 'error'
    }
  },
  {
    // the generator runs under Node and reports what it wrote
    files: ['schema/**/*.mjs', '*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } }
  }
);
