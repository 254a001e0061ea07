// Lint for the published packages' sources (run by `npm test` through scripts/lint.mjs).
// ESLint with typescript-eslint's type-aware rules: the rules that matter here need types (floating promises,
// promises handed to event listeners), which Biome cannot check. Import boundaries keep I/O at the edges.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import reactHooks from 'eslint-plugin-react-hooks';

const server = 'packages/server/src';

/** `no-restricted-imports` patterns: a library only the named folder may import. */
const only = (lib, where) => ({
  name: lib,
  message: `only ${where} imports ${lib}: keep I/O at the edges (see README "Layout")`,
});
const ws = only('ws', 'packages/server/src/transport/');
const ioredis = only('ioredis', 'packages/server/src/engine/redis/');
const pg = only('pg', 'the outbox stores (packages/server/src/outbox/postgres.ts)');
const sqlite = only('better-sqlite3', 'the outbox stores (packages/server/src/outbox/sqlite.ts)');
const nodeSqlite = only('node:sqlite', 'the outbox stores (packages/server/src/outbox/sqlite.ts)');

const restrict = (...paths) => ['error', { paths }];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**'] },
  {
    files: ['packages/*/src/**/*.ts', 'packages/*/src/**/*.tsx'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
    settings: {
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
      'import-x/extensions': ['.ts', '.tsx', '.js'],
      // Sources import './x.js' for './x.ts' (NodeNext).
      'import-x/resolver-next': [
        importX.createNodeResolver({
          extensions: ['.ts', '.tsx', '.js'],
          extensionAlias: { '.js': ['.ts', '.tsx', '.js'] },
        }),
      ],
    },
    rules: {
      // A promise nobody awaits or catches is a process crash waiting for its first rejection. `void p` is not
      // enough: every promise left running gets a .catch that says what happens to its failure.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false, ignoreIIFE: false }],
      // An async function handed to an event emitter (req.on('data', async …)) rejects into nowhere.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: true, attributes: false } }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'no-restricted-imports': restrict(ws, ioredis, pg, sqlite, nodeSqlite),
    },
  },
  {
    files: ['packages/react/src/**/*.ts', 'packages/react/src/**/*.tsx'],
    plugins: { 'react-hooks': reactHooks },
    rules: { 'react-hooks/rules-of-hooks': 'error', 'react-hooks/exhaustive-deps': 'error' },
  },
  {
    // Configuration is read in one place: config/ reads the environment it is given, and only the CLI hands it
    // process.env. Anything else takes its settings from HeraldConfig.
    files: [`${server}/**/*.ts`],
    ignores: [`${server}/config/**`, `${server}/cli/**`],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message:
            'read settings from HeraldConfig: only packages/server/src/config/ reads the environment (and cli/ passes process.env to it)',
        },
      ],
    },
  },
  {
    files: [`${server}/transport/**/*.ts`],
    rules: { 'no-restricted-imports': restrict(ioredis, pg, sqlite, nodeSqlite) },
  },
  {
    files: [`${server}/engine/redis/**/*.ts`],
    rules: { 'no-restricted-imports': restrict(ws, pg, sqlite, nodeSqlite) },
  },
  {
    files: [`${server}/outbox/postgres.ts`],
    rules: { 'no-restricted-imports': restrict(ws, ioredis, sqlite, nodeSqlite) },
  },
  { files: [`${server}/outbox/sqlite.ts`], rules: { 'no-restricted-imports': restrict(ws, ioredis, pg) } },
);
