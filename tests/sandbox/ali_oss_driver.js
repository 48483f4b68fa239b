// Drives the Node build of ali-oss (node_modules/ali-oss) against the sandbox, for pytest.
// stdin: {"endpoint", "bucket", "region", "credentials": {accessKeyId, accessKeySecret, stsToken},
//         "source": "<key to copy from>", "keys": [...], "operations": ["put", "multipart", "copy", "post"],
//         "v4": true|false}
// stdout: one JSON array of {key, operation, ok, status, code} in the order tried.
'use strict';

const OSS = require('ali-oss');

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function failure(err) {
  return { ok: false, status: err.status || 0, code: err.code || err.name || String(err) };
}

async function postObject(client, job, key) {
  // ali-oss signs the policy (V1: OSSAccessKeyId/Signature); the form itself goes out with fetch.
  const policy = {
    expiration: new Date(Date.now() + 600000).toISOString(),
    conditions: [['starts-with', '$key', 'user/'], ['content-length-range', 1, 1024]],
  };
  const signed = client.calculatePostSignature(policy);
  const form = new FormData();
  form.append('key', key);
  form.append('policy', signed.policy);
  form.append('OSSAccessKeyId', signed.OSSAccessKeyId);
  form.append('Signature', signed.Signature);
  form.append('x-oss-security-token', job.credentials.stsToken);
  form.append('file', new Blob([Buffer.from('intrusion')], { type: 'image/jpeg' }), 'f.jpg');
  const answer = await fetch(`${job.endpoint}/${job.bucket}`, { method: 'POST', body: form });
  const text = await answer.text();
  const code = (text.match(/<Code>([^<]*)<\/Code>/) || [])[1] || '';
  return answer.status < 300 ? { ok: true, status: answer.status } : { ok: false, status: answer.status, code };
}

const OPERATIONS = {
  async put(client, job, key) {
    await client.put(key, Buffer.from('intrusion'));
  },
  async multipart(client, job, key) {
    const init = await client.initMultipartUpload(key);
    const part = await client.uploadPart(key, init.uploadId, 1, Buffer.from('intrusion'), 0, 9);
    await client.completeMultipartUpload(key, init.uploadId, [{ number: 1, etag: part.etag }]);
  },
  async copy(client, job, key) {
    await client.copy(key, job.source);
  },
  post: postObject,
};

async function main() {
  const job = await readStdin();
  const client = new OSS({
    region: `oss-${job.region}`,
    endpoint: job.endpoint,
    secure: false,
    sldEnable: true,
    bucket: job.bucket,
    accessKeyId: job.credentials.accessKeyId,
    accessKeySecret: job.credentials.accessKeySecret,
    stsToken: job.credentials.stsToken,
    authorizationV4: !!job.v4,
    retryMax: 0,
    timeout: 10000,
  });
  const results = [];
  for (const key of job.keys) {
    for (const operation of job.operations) {
      try {
        const outcome = await OPERATIONS[operation](client, job, key);
        results.push({ key, operation, ...(outcome || { ok: true, status: 200 }) });
      } catch (err) {
        results.push({ key, operation, ...failure(err) });
      }
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
