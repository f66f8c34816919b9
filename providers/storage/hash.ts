/** SHA-256 of a file, streamed (never the whole file in memory). */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export const sha256Of = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
