// The Python examples' unit tests (MLflow authorization function, Airflow webserver_config),
// run under this runner so that one summary counts them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { REPO_ROOT, mlflowAvailable, venvDir } from '../lib/harness.mjs';

function unittest(python, folder) {
  const result = spawnSync(python, ['-m', 'unittest', 'discover', '-s', join(REPO_ROOT, 'examples', folder), '-p', 'test_*.py', '-v'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

test('examples/mlflow: oidc_header_auth unit tests pass', { skip: mlflowAvailable() ? false : 'MLflow missing in .venv-e2e (run scripts/install-e2e-deps.sh)' }, () => {
  const { status, output } = unittest(join(venvDir(), 'bin', 'python'), 'mlflow');
  assert.equal(status, 0, output);
  assert.match(output, /^Ran (\d+) tests?/m);
  assert.match(output, /^OK$/m);
});

test('examples/airflow: webserver_config unit tests pass', () => {
  const { status, output } = unittest(process.env.PYTHON ?? 'python3', 'airflow');
  assert.equal(status, 0, output);
  assert.match(output, /^OK$/m);
});
