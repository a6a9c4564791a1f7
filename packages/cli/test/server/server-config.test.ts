/**
 * `strand server` configuration: properties and YAML files, --override, STRAND_* environment
 * variables (later forms win), and validation errors that name the key.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StrandError } from '@strand/protocol';
import { configFromEnv, parseListeners, parseVoters, resolveServerConfig } from '../../src';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-cfg-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(StrandError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

const base = ['node.id=1', 'controller.quorum.voters=1@127.0.0.1:9193', 'process.roles=controller', 'listeners=CONTROLLER://127.0.0.1:9193'];

describe('server configuration', () => {
  it('reads properties, then overrides, then environment (later wins)', () => {
    const file = write('a.properties', '# comment\nnode.id = 1\ncontroller.quorum.voters=1@127.0.0.1:9193,2@127.0.0.1:9194\nprocess.roles: controller\nlisteners=CONTROLLER://0.0.0.0:9193\nbroker.session.timeout.ms=5000\n');
    const cfg = resolveServerConfig({ file, overrides: ['broker.session.timeout.ms=6000'], env: { STRAND_BROKER_SESSION_TIMEOUT_MS: '7000', OTHER: 'x' } });
    expect(cfg.nodeId).toBe(1);
    expect(cfg.values['broker.session.timeout.ms']).toBe(7000);
    expect(cfg.voters).toEqual([{ id: 1, host: '127.0.0.1', port: 9193 }, { id: 2, host: '127.0.0.1', port: 9194 }]);
    expect(cfg.roles).toEqual({ broker: false, controller: true });
    expect(cfg.advertised.get('CONTROLLER')).toEqual({ name: 'CONTROLLER', host: '127.0.0.1', port: 9193 });
  });

  it('reads nested YAML', () => {
    const file = write('a.yaml', 'node:\n  id: 1\ncontroller:\n  quorum:\n    voters: "1@127.0.0.1:9193"\nprocess.roles: [controller]\nlisteners: CONTROLLER://127.0.0.1:9193\nlog:\n  dirs: [/tmp/a, /tmp/b]\n');
    const cfg = resolveServerConfig({ file });
    expect(cfg.values['log.dirs']).toEqual(['/tmp/a', '/tmp/b']);
    expect(cfg.metadataLogDir).toBe('/tmp/a');
  });

  it('rejects bad input with errors naming the key', () => {
    expect(errorOf(() => resolveServerConfig({ overrides: base.filter((o) => !o.startsWith('node.id')) }))).toMatch(/node\.id/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'node.id=abc'] }))).toBe('Invalid value abc for configuration node.id: Not a number of type INT');
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'controller.quorum.voters=1@host'] }))).toMatch(/controller\.quorum\.voters.*id@host:port/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'node.id=5'] }))).toMatch(/not a voter/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'listeners=BROKER://127.0.0.1:1'] }))).toMatch(/CONTROLLER:\/\/ listener/);
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'no.such.key=1'] }))).toBe('Unknown configuration no.such.key');
    expect(errorOf(() => resolveServerConfig({ overrides: [...base, 'process.roles=worker'] }))).toMatch(/process\.roles/);
    expect(errorOf(() => resolveServerConfig({ overrides: ['novalue'] }))).toMatch(/key=value/);
    expect(errorOf(() => configFromEnv({ STRAND_NOPE: '1' }))).toMatch(/STRAND_NOPE/);
    expect(configFromEnv({ STRAND_BOOTSTRAP: '127.0.0.1:9093' })).toEqual({}); // the client commands' variable
    expect(errorOf(() => resolveServerConfig({ file: write('bad.properties', 'just text\n') }))).toMatch(/bad\.properties:1/);
    expect(errorOf(() => resolveServerConfig({ file: path.join(dir, 'missing.properties') }))).toMatch(/cannot read config file/);
  });

  it('parses voters and listeners', () => {
    expect(parseVoters('1@[::1]:9193')).toEqual([{ id: 1, host: '::1', port: 9193 }]);
    expect(() => parseVoters('1@a:1,1@b:2')).toThrow(/twice/);
    expect([...parseListeners('listeners', 'broker://:9093').values()]).toEqual([{ name: 'BROKER', host: '0.0.0.0', port: 9093 }]);
  });
});
