/** Shared by the plugin's unit tests: the fixtures folder and a config over it. */
import path from 'node:path';
import { readServiceConfig, type ServiceConfig } from './config';

/** plugin/testdata in the source tree (tests run from dist/plugin). */
export const TESTDATA = path.resolve(__dirname, '..', '..', 'plugin', 'testdata');

export function fixtureConfig(functions: Record<string, Record<string, unknown>>, provider: Record<string, unknown> = {}): ServiceConfig {
  return readServiceConfig(
    { service: 'fixture', provider: { name: 'gpu', target: 'local', ...provider }, functions },
    { serviceDir: TESTDATA, stage: 'test' },
  );
}
