// Lint: typescript-eslint's recommended rules over the project's TypeScript (build output, examples'
// generated clients and copies made by the tests excluded).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '**/generated/**', 'integration/.work/**', '**/.serverless/**', '**/.serverless-gpu/**', 'scripts/**', '**/testdata/golden/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
);
