import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** sha256 of a file's bytes, or of every file in a folder (names and bytes, sorted); 'absent' when missing. */
export function hashPath(path: string): string {
  if (!existsSync(path)) return 'absent';
  const hash = createHash('sha256');
  const visit = (p: string, rel: string) => {
    if (statSync(p).isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        if (name.startsWith('.')) continue;
        visit(join(p, name), rel ? `${rel}/${name}` : name);
      }
    } else {
      hash.update(`${rel}\u0000`);
      hash.update(readFileSync(p));
      hash.update('\u0000');
    }
  };
  visit(path, '');
  return hash.digest('hex');
}

export function hashJson(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}
