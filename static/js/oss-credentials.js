/*
 * Upload credentials from our API, turned into exactly what ali-oss's `refreshSTSToken` must return.
 *
 * ali-oss merges whatever refreshSTSToken returns into the client's options (Object.assign, after
 * lower-casing the first letter of each key). Returning the API's answer unchanged would copy its
 * `endpoint`, `region` and `bucket` over the client's own (the endpoint as a plain string where ali-oss
 * keeps a parsed URL), and every later request would go to a broken URL. So only three keys go back:
 * {accessKeyId, accessKeySecret, stsToken}.
 *
 * Works as a classic <script> (sets `window.ossCredentials`) and under Node (`require`), no build step:
 *
 *   const client = new OSS({ ...options, accessKeyId, accessKeySecret, stsToken,
 *     refreshSTSToken: ossCredentials.refreshSTSTokenWith(fetchFromTheApi) });
 */
(function (root, factory) {
  "use strict";
  const api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  } else {
    root.ossCredentials = api;
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  function pick(answer, camel, stock) {
    const value = answer[camel] !== undefined ? answer[camel] : answer[stock];
    if (typeof value !== "string" || value === "") {
      throw new TypeError("The credentials answer has no " + camel + ".");
    }
    return value;
  }

  /**
   * `answer`: the JSON of POST /api/uploads/sts-token/ ({accessKeyId, accessKeySecret, securityToken,
   * expiration, bucket, region, endpoint, prefix}) or of the stock format (GET /api/uploads/sts-server/:
   * {StatusCode, AccessKeyId, AccessKeySecret, SecurityToken, Expiration}).
   * Returns exactly {accessKeyId, accessKeySecret, stsToken}; throws a TypeError when a key is missing
   * or empty, or when a stock-format answer carries a StatusCode other than "200".
   */
  function toRefreshSTSToken(answer) {
    if (answer === null || typeof answer !== "object") {
      throw new TypeError("The credentials answer is not a JSON object.");
    }
    if (answer.StatusCode !== undefined && String(answer.StatusCode) !== "200") {
      throw new TypeError(
        "The credentials server refused: " + answer.ErrorCode + " (" + answer.ErrorMessage + ")."
      );
    }
    return {
      accessKeyId: pick(answer, "accessKeyId", "AccessKeyId"),
      accessKeySecret: pick(answer, "accessKeySecret", "AccessKeySecret"),
      stsToken: pick(answer, "securityToken", "SecurityToken"),
    };
  }

  /**
   * A `refreshSTSToken` for ali-oss: `fetchAnswer` is an async function that asks the API for
   * credentials and resolves to its JSON answer.
   */
  function refreshSTSTokenWith(fetchAnswer) {
    return async function refreshSTSToken() {
      return toRefreshSTSToken(await fetchAnswer());
    };
  }

  return { toRefreshSTSToken: toRefreshSTSToken, refreshSTSTokenWith: refreshSTSTokenWith };
});
