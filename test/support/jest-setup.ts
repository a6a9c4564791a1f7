/**
 * Runs before every test file (jest.config.js setupFiles). Property tests (fast-check) are
 * deterministic: every run uses the same seed, so CI never meets a case no earlier run met.
 * FC_SEED=n explores other cases; a failure prints the seed and path that replay it.
 */
import fc from 'fast-check';

fc.configureGlobal({ seed: Number(process.env['FC_SEED'] ?? 20_261_201) });
