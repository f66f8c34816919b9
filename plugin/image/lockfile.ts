/**
 * Versions of external modules as the service pins them: its package-lock.json (v2/v3 `packages`,
 * v1 `dependencies`), else the installed package's own version. The user lists a module once — in
 * package.json — and the image installs that exact version.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors';

interface Lockfile {
  packages?: Record<string, { version?: string }>;
  dependencies?: Record<string, { version?: string }>;
}

function findUp(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, name);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** `name@version` for each module, in the order given. */
export function pinVersions(serviceDir: string, modules: readonly string[]): string[] {
  if (modules.length === 0) return [];
  const lockFile = findUp(serviceDir, 'package-lock.json');
  const lock: Lockfile = lockFile ? (JSON.parse(fs.readFileSync(lockFile, 'utf8')) as Lockfile) : {};
  return modules.map((name) => {
    const version =
      lock.packages?.[`node_modules/${name}`]?.version ??
      lock.dependencies?.[name]?.version ??
      installedVersion(serviceDir, name);
    if (!version) {
      throw new BuildError(
        'UNPINNED_MODULE',
        `module "${name}" is kept out of the bundle but no version of it is pinned: add it to the service's package.json and run npm install`,
      );
    }
    return `${name}@${version}`;
  });
}

function installedVersion(serviceDir: string, name: string): string | undefined {
  const pkg = findUp(serviceDir, path.join('node_modules', name, 'package.json'));
  return pkg ? (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: string }).version : undefined;
}
