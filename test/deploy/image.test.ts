/**
 * The Dockerfile's runtime stage, emulated without Docker: the same tree the build stage hands
 * over (root package.json and package-lock.json, each workspace's package.json and dist/) gets the
 * same `npm ci --omit=dev` (offline, from the npm cache `npm ci` filled), and then must hold no
 * dev tool and still run a node: one combined controller+broker started with the image's
 * ENTRYPOINT and CMD, in its WORKDIR (a temp directory for /var/lib/strand), turns ready on
 * /readyz, answers /healthz as the HEALTHCHECK asks, and exits 0 on SIGTERM. This catches a
 * runtime dependency that only works today because a dev dependency is hoisted. The Dockerfile is
 * checked to still contain the steps emulated here, and to copy every workspace's manifest. Without the packages in the npm cache the
 * install cannot run offline: the test prints a notice and passes.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../support/free-port';
import { APP_DIR, DOCKERFILE, REPO, loadImageSpec } from './compose';

jest.setTimeout(180_000);

function httpStatus(port: number, pathName: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

test('the runtime stage (production dependencies only) runs a ready node', async () => {
  const dockerfile = fs.readFileSync(DOCKERFILE, 'utf8');
  expect(dockerfile).toMatch(/cp "\$p\/package\.json" "\/out\/\$p\/" && cp -r "\$p\/dist" "\/out\/\$p\/"/);
  expect(dockerfile).toMatch(/RUN npm ci --omit=dev /);
  expect(dockerfile).toMatch(/^USER node$/m);
  // The build stage copies every workspace's manifest before `npm ci` (a new workspace must be added there).
  for (const p of fs.readdirSync(path.join(REPO, 'packages'))) {
    if (fs.existsSync(path.join(REPO, 'packages', p, 'package.json'))) expect(dockerfile).toContain(`COPY packages/${p}/package.json packages/${p}/`);
  }
  const image = loadImageSpec();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-image-'));
  const app = path.join(root, 'app');
  const data = path.join(root, 'data');
  try {
    fs.mkdirSync(data);
    fs.mkdirSync(path.join(app, 'packages'), { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(REPO, f), path.join(app, f));
    for (const p of fs.readdirSync(path.join(REPO, 'packages'))) {
      const from = path.join(REPO, 'packages', p);
      if (!fs.existsSync(path.join(from, 'package.json'))) continue;
      fs.mkdirSync(path.join(app, 'packages', p));
      fs.copyFileSync(path.join(from, 'package.json'), path.join(app, 'packages', p, 'package.json'));
      fs.cpSync(path.join(from, 'dist'), path.join(app, 'packages', p, 'dist'), { recursive: true });
    }
    const npm = spawnSync('npm', ['ci', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app, encoding: 'utf8', timeout: 150_000, env: { ...process.env, NODE_ENV: 'production' } });
    if (npm.status !== 0 && /ENOTCACHED/.test(npm.stderr)) {
      console.log('NOTICE: the npm cache lacks some production packages; cannot emulate the runtime stage offline (run npm ci first)');
      return;
    }
    expect({ status: npm.status, stderr: npm.status === 0 ? '' : npm.stderr }).toEqual({ status: 0, stderr: '' });
    for (const dev of ['typescript', 'jest', '@swc/core', 'kubernetes-models', 'fast-check']) expect({ dev, present: fs.existsSync(path.join(app, 'node_modules', dev)) }).toEqual({ dev, present: false });

    const [controller, broker, httpPort] = (await freePorts(3)) as [number, number, number];
    const argv = [...image.entrypoint, ...image.cmd].map((a) => (a.startsWith(`${APP_DIR}/`) ? path.join(app, a.slice(APP_DIR.length + 1)) : a));
    expect(argv[0]).toBe('node');
    const env: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => !e[0].startsWith('STRAND_') && e[1] !== undefined));
    Object.assign(env, image.env, {
      NODE_ENV: 'production',
      STRAND_NODE_ID: '1',
      STRAND_PROCESS_ROLES: 'broker,controller',
      STRAND_CONTROLLER_QUORUM_VOTERS: `1@127.0.0.1:${controller}`,
      STRAND_LISTENERS: `BROKER://127.0.0.1:${broker},CONTROLLER://127.0.0.1:${controller}`,
      STRAND_HTTP_LISTENER: `127.0.0.1:${httpPort}`,
    });
    const proc = spawn(process.execPath, argv.slice(1), { cwd: data, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const log: string[] = [];
    proc.stdout.on('data', (c: Buffer) => log.push(c.toString()));
    proc.stderr.on('data', (c: Buffer) => log.push(c.toString()));
    const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    try {
      const deadline = performance.now() + 60_000;
      let ready = false;
      while (!ready && performance.now() < deadline && proc.exitCode === null) {
        ready = (await httpStatus(httpPort, '/readyz').catch(() => 0)) === 200;
        if (!ready) await new Promise((r) => setTimeout(r, 200));
      }
      if (!ready) throw new Error(`the node did not turn ready: ${log.join('').slice(-3000)}`);
      expect(await httpStatus(httpPort, '/healthz')).toBe(200);
      // The default log.dirs is relative: in the image's WORKDIR, the data volume.
      expect(image.workdir).toBe('/var/lib/strand');
      expect(fs.existsSync(path.join(data, 'data', 'strand-logs'))).toBe(true);
      proc.kill('SIGTERM');
      expect(await Promise.race([exit, new Promise<string>((resolve) => setTimeout(() => resolve('no exit within 30 s'), 30_000).unref())])).toBe(0);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
