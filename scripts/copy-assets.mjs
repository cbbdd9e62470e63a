// Build step: the viewer's stylesheet and script ship next to its compiled modules.
import { cpSync, rmSync } from 'node:fs';

rmSync('dist/viewer/static', { recursive: true, force: true });
cpSync('src/viewer/static', 'dist/viewer/static', { recursive: true });
