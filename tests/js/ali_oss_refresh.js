// Real ali-oss (its Node build, same option handling as the browser bundle) against the sandbox:
// two uploads with a refresh in between, refreshSTSToken returning either the helper's output
// ("helper") or the API's answer unchanged ("raw", the pitfall). Prints one JSON line.
//   node tests/js/ali_oss_refresh.js helper|raw < sts-token-answer.json
"use strict";
const OSS = require("ali-oss");
const { refreshSTSTokenWith } = require("../../static/js/oss-credentials.js");

async function main() {
  const mode = process.argv[2];
  const answer = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const fetchAnswer = async () => answer;
  const client = new OSS({
    accessKeyId: answer.accessKeyId,
    accessKeySecret: answer.accessKeySecret,
    stsToken: answer.securityToken,
    refreshSTSToken: mode === "raw" ? fetchAnswer : refreshSTSTokenWith(fetchAnswer),
    refreshSTSTokenInterval: 0, // refresh before every request after the first
    endpoint: answer.endpoint,
    bucket: answer.bucket,
    region: "oss-" + answer.region,
    sldEnable: true, // path-style for the sandbox's IP endpoint
    secure: false,
    retryMax: 0,
    timeout: 10000,
  });
  const results = [];
  for (const name of ["first.txt", "second.txt"]) {
    try {
      const put = await client.put(answer.prefix + mode + "-" + name, Buffer.from(name));
      results.push(put.res.status);
    } catch (error) {
      results.push(String(error.name || error.code || error) + ": " + String(error.message).slice(0, 200));
    }
  }
  console.log(JSON.stringify({ results, endpointType: typeof client.options.endpoint }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
