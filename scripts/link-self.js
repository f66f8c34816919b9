// Makes `require('serverless-gpu')` resolve to this checkout, the way it does in a user's project
// after `npm install serverless-gpu`: the examples load the plugin and `serverless-gpu/runtime` by name.
const fs = require('node:fs');
const path = require('node:path');
const root = path.resolve(__dirname, '..');
const link = path.join(root, 'node_modules', 'serverless-gpu');
fs.mkdirSync(path.dirname(link), { recursive: true });
try {
  if (fs.readlinkSync(link) === '..') process.exit(0);
} catch {}
fs.rmSync(link, { recursive: true, force: true });
fs.symlinkSync('..', link, 'dir');
