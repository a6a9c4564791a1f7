// One jest config for every package. Tests import workspace packages from their TypeScript
// sources (moduleNameMapper), so a test run never depends on a stale dist/. @swc/jest strips
// types only; `npm test` type-checks tests first with tsconfig.test.json.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/test'],
  testMatch: ['**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/test/chaos/'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  moduleNameMapper: { '^@strand/([a-z-]+)$': '<rootDir>/packages/$1/src' },
  setupFiles: ['<rootDir>/test/support/jest-setup.ts'],
  testTimeout: 60000,
};
