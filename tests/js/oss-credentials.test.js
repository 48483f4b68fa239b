// node --test tests/js/ : the browser helper's output shape (run by tests/js/test_oss_credentials.py).
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { toRefreshSTSToken, refreshSTSTokenWith } = require("../../static/js/oss-credentials.js");

const STS_TOKEN_ANSWER = {
  accessKeyId: "STS.abc",
  accessKeySecret: "secret",
  securityToken: "CAIS-token",
  expiration: "2026-11-29T18:00:00Z",
  bucket: "demo-avatars",
  region: "cn-hangzhou",
  endpoint: "https://oss-cn-hangzhou.aliyuncs.com",
  prefix: "user/7/",
};
const EXPECTED = { accessKeyId: "STS.abc", accessKeySecret: "secret", stsToken: "CAIS-token" };

test("the sts-token answer becomes exactly {accessKeyId, accessKeySecret, stsToken}", () => {
  const result = toRefreshSTSToken(STS_TOKEN_ANSWER);
  assert.deepStrictEqual(result, EXPECTED);
  assert.deepStrictEqual(Object.keys(result), ["accessKeyId", "accessKeySecret", "stsToken"]);
  for (const dropped of ["endpoint", "region", "bucket", "prefix", "expiration", "securityToken"]) {
    assert.equal(dropped in result, false, dropped);
  }
});

test("the stock mobile format maps the same way", () => {
  const stock = { StatusCode: "200", AccessKeyId: "STS.abc", AccessKeySecret: "secret",
    SecurityToken: "CAIS-token", Expiration: "2026-11-29T18:00:00Z" };
  assert.deepStrictEqual(toRefreshSTSToken(stock), EXPECTED);
});

test("a stock-format refusal is an error, not empty credentials", () => {
  assert.throws(
    () => toRefreshSTSToken({ StatusCode: "401", ErrorCode: "credential_url_revoked", ErrorMessage: "ended" }),
    /credential_url_revoked/,
  );
});

test("missing, empty or non-string keys are errors", () => {
  for (const broken of [
    null, "text", {}, { ...STS_TOKEN_ANSWER, securityToken: "" },
    { ...STS_TOKEN_ANSWER, accessKeyId: 7 }, { detail: "Not authenticated.", code: "not_authenticated" },
  ]) {
    assert.throws(() => toRefreshSTSToken(broken), TypeError);
  }
});

test("refreshSTSTokenWith wraps an async fetch of the answer", async () => {
  const refresh = refreshSTSTokenWith(async () => STS_TOKEN_ANSWER);
  assert.deepStrictEqual(await refresh(), EXPECTED);
});
