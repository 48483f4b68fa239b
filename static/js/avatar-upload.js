/*
 * Avatar upload demo: the browser uploads straight to OSS with short-lived STS credentials.
 *
 * 1. POST /api/uploads/sts-token/   credentials that can write only under user/<id>/
 * 2. POST /api/me/avatar/upload-key/ the server picks a fresh random key (and re-checks size and type)
 * 3. ali-oss `put` (small files) or `multipartUpload` with progress (large files) straight to OSS
 * 4. POST /api/me/avatar/ {key}     the server looks the object up in OSS and only then accepts it
 * 5. GET /api/me/                   a short-lived signed URL of the new avatar
 *
 * No signing here: the official SDK (global `OSS`, served from npm's ali-oss/dist) does all of it.
 * Plain script, no build step.
 */
(function () {
  'use strict';

  const root = document.getElementById('avatar-uploader');
  if (!root || typeof OSS === 'undefined') {
    return;
  }

  const MB = 1024 * 1024;
  // Below this, one PUT is simplest; above it, parts give progress and cancel.
  const MULTIPART_THRESHOLD = 1 * MB;
  // ali-oss refuses parts under 100 KB; 512 KB gives a 3 MB file six parts to report progress on.
  const PART_SIZE = 512 * 1024;
  // Ask the API for fresh credentials at most this often (ali-oss refreshes on a timer, not on error).
  const MAX_REFRESH_INTERVAL_MS = 5 * 60 * 1000;

  const urls = {
    me: root.dataset.meUrl,
    stsToken: root.dataset.stsTokenUrl,
    uploadKey: root.dataset.uploadKeyUrl,
    avatar: root.dataset.avatarUrl,
  };
  const maxBytes = Number(root.dataset.maxBytes);
  const acceptedTypes = (root.dataset.acceptedTypes || '').split(',').filter(Boolean);
  const csrfToken = root.querySelector('input[name="csrfmiddlewaretoken"]').value;

  const el = (id) => root.querySelector(`[data-testid="${id}"]`);
  const image = el('avatar-image');
  const placeholder = el('avatar-placeholder');
  const fileInput = el('file-input');
  const uploadButton = el('upload-button');
  const cancelButton = el('cancel-button');
  const progress = el('upload-progress');
  const statusLine = el('upload-status');

  let busy = false;
  let cancelCurrent = null; // set while a multipart upload runs

  // --- Messages a person can act on -----------------------------------------------------------

  function formatBytes(n) {
    if (n >= MB) return `${(n / MB).toFixed(1).replace(/\.0$/, '')} MB`;
    if (n >= 1024) return `${Math.round(n / 1024)} KB`;
    return `${n} bytes`;
  }

  const MESSAGES = {
    access_denied:
      'Access denied: your upload permission only covers your own folder, so the storage service refused this file.',
    token_expired: 'Your upload permission expired before the upload finished. Please try again.',
    network: 'Network problem: the storage service or this site could not be reached. Check your connection and try again.',
    too_large: `That file is too large: avatars may be at most ${formatBytes(maxBytes)}.`,
    not_an_image: 'That file is not an image we accept. Choose a PNG, JPEG, GIF or WebP picture.',
    signed_out: 'You have been signed out. Reload the page and log in again.',
    busy_server: 'The service is busy or temporarily unavailable. Please try again in a minute.',
    not_found: 'The upload did not arrive at the storage service. Please try again.',
  };

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail || `Request failed with status ${status}`);
      this.name = 'ApiError';
      this.status = status;
      this.code = code || '';
    }
  }

  /** Turn an API, ali-oss or network error into one sentence for the status line. */
  function describeError(err) {
    if (err instanceof ApiError) {
      switch (err.code) {
        case 'object_too_large':
          return MESSAGES.too_large;
        case 'not_an_image':
          return MESSAGES.not_an_image;
        case 'outside_prefix':
          return MESSAGES.access_denied;
        case 'object_not_found':
          return MESSAGES.not_found;
        case 'not_authenticated':
        case 'authentication_failed':
        case 'token_not_valid':
          return MESSAGES.signed_out;
        case 'permission_denied':
          return 'The server refused the request. Reload the page and try again.';
        case 'network':
          return MESSAGES.network;
        default:
          if (err.status === 429 || err.status >= 500) return MESSAGES.busy_server;
          return err.message;
      }
    }
    const code = (err && err.code) || '';
    const status = err && typeof err.status === 'number' ? err.status : null;
    if (code === 'SecurityTokenExpired' || code === 'InvalidSecurityToken') return MESSAGES.token_expired;
    if (code === 'AccessDenied' || status === 403) return MESSAGES.access_denied;
    if (code === 'EntityTooLarge') return MESSAGES.too_large;
    if (status === -1 || status === -2 || status === 0 || err instanceof TypeError || /Timeout|Network|RequestError/i.test(err && err.name)) {
      return MESSAGES.network;
    }
    return `The upload failed: ${(err && err.message) || 'unknown error'}.`;
  }

  function setStatus(text, kind) {
    statusLine.textContent = text;
    statusLine.dataset.kind = kind || 'info';
  }

  function setProgress(fraction) {
    progress.value = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  }

  function setBusy(value, cancellable) {
    busy = value;
    uploadButton.disabled = value || !fileInput.files.length;
    fileInput.disabled = value;
    cancelButton.disabled = !(value && cancellable);
  }

  // --- Our API (session cookie + CSRF header) ---------------------------------------------------

  async function api(method, url, body) {
    let response;
    try {
      response = await fetch(url, {
        method,
        credentials: 'same-origin',
        headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, 'network', MESSAGES.network);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      throw new ApiError(response.status, data && data.code, data && data.detail);
    }
    return data;
  }

  async function credentials() {
    const c = await api('POST', urls.stsToken, {});
    return {
      accessKeyId: c.accessKeyId,
      accessKeySecret: c.accessKeySecret,
      stsToken: c.securityToken,
      expiration: new Date(c.expiration),
      bucket: c.bucket,
      region: c.region,
      endpoint: c.endpoint,
      prefix: c.prefix,
    };
  }

  function isLocalHost(hostname) {
    return hostname === 'localhost' || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith('[');
  }

  /** An ali-oss client on fresh credentials that keeps itself fresh from the API during long uploads. */
  async function newClient() {
    const c = await credentials();
    const endpoint = new URL(c.endpoint);
    const lifetimeMs = c.expiration.getTime() - Date.now();
    return new OSS({
      // ali-oss names regions "oss-cn-hangzhou"; the API gives the standard id, and V4 signing strips "oss-" again.
      region: `oss-${c.region}`,
      endpoint: c.endpoint,
      secure: endpoint.protocol === 'https:',
      // An IP or localhost endpoint (the local sandbox) needs path-style /<bucket>/<key> addressing.
      sldEnable: isLocalHost(endpoint.hostname),
      bucket: c.bucket,
      accessKeyId: c.accessKeyId,
      accessKeySecret: c.accessKeySecret,
      stsToken: c.stsToken,
      authorizationV4: true,
      refreshSTSToken: async () => {
        const fresh = await credentials();
        return { accessKeyId: fresh.accessKeyId, accessKeySecret: fresh.accessKeySecret, stsToken: fresh.stsToken };
      },
      // Refresh well before expiry: every third of the token's life, at most every 5 minutes (the cap also
      // protects against a browser clock far behind the server's).
      refreshSTSTokenInterval: Math.max(1000, Math.min(MAX_REFRESH_INTERVAL_MS, lifetimeMs / 3)),
      timeout: 120 * 1000,
      retryMax: 2,
    });
  }

  // --- The avatar on the page -------------------------------------------------------------------

  function showAvatar(url) {
    return new Promise((resolve) => {
      if (!url) {
        image.hidden = true;
        image.removeAttribute('src');
        placeholder.hidden = false;
        resolve(false);
        return;
      }
      image.onload = () => {
        image.hidden = false;
        placeholder.hidden = true;
        resolve(true);
      };
      image.onerror = () => resolve(false);
      image.src = url;
    });
  }

  async function refreshAvatar() {
    const me = await api('GET', urls.me);
    return showAvatar(me.avatarUrl);
  }

  // --- Upload ------------------------------------------------------------------------------------

  function checkFile(file) {
    if (file.size > maxBytes) {
      return `That file is ${formatBytes(file.size)}; avatars may be at most ${formatBytes(maxBytes)}.`;
    }
    if (!acceptedTypes.includes(file.type)) {
      return MESSAGES.not_an_image;
    }
    if (file.size === 0) {
      return 'That file is empty. Choose a picture.';
    }
    return null;
  }

  async function sendToOss(client, key, file) {
    const options = { mime: file.type };
    if (file.size < MULTIPART_THRESHOLD) {
      await client.put(key, file, options);
      return;
    }
    let uploadId = null;
    cancelCurrent = () => client.cancel();
    setBusy(true, true);
    try {
      await client.multipartUpload(key, file, {
        ...options,
        partSize: PART_SIZE,
        parallel: 3,
        progress: (fraction, checkpoint) => {
          if (checkpoint && checkpoint.uploadId) uploadId = checkpoint.uploadId;
          setProgress(fraction);
        },
      });
    } catch (err) {
      if (err && err.name === 'cancel' && uploadId) {
        // Throw away the parts already stored; the token allows AbortMultipartUpload on its own prefix.
        await client.abortMultipartUpload(key, uploadId).catch(() => {});
      }
      throw err;
    } finally {
      cancelCurrent = null;
    }
  }

  /**
   * Upload `file` and make it the avatar. `explicitKey` is for people automating the page: the
   * server normally picks the key, and the credentials decide what may be written anyway.
   */
  async function upload(file, explicitKey) {
    if (busy) return false;
    const problem = checkFile(file);
    if (problem) {
      setStatus(problem, 'error');
      return false;
    }
    setBusy(true, false);
    setProgress(0);
    try {
      setStatus('Getting upload permission…');
      const [client, target] = await Promise.all([
        newClient(),
        explicitKey
          ? Promise.resolve({ key: explicitKey })
          : api('POST', urls.uploadKey, { contentType: file.type, size: file.size }),
      ]);
      setStatus(`Uploading ${file.name} (${formatBytes(file.size)})…`);
      await sendToOss(client, target.key, file);
      setProgress(1);
      setStatus('Checking the upload…');
      await api('POST', urls.avatar, { key: target.key });
      const shown = await refreshAvatar();
      setStatus(shown ? 'Avatar updated.' : 'Avatar saved, but the image could not be displayed.', shown ? 'success' : 'error');
      fileInput.value = '';
      return true;
    } catch (err) {
      if (err && err.name === 'cancel') {
        setProgress(0);
        setStatus('Upload cancelled. Nothing was changed.', 'info');
      } else {
        setStatus(describeError(err), 'error');
      }
      return false;
    } finally {
      setBusy(false, false);
    }
  }

  // --- Wiring ------------------------------------------------------------------------------------

  fileInput.addEventListener('change', () => {
    const file = fileInput.files[0];
    setProgress(0);
    if (!file) {
      setBusy(false, false);
      return;
    }
    const problem = checkFile(file);
    setStatus(problem || `Ready to upload ${file.name} (${formatBytes(file.size)}).`, problem ? 'error' : 'info');
    uploadButton.disabled = busy || Boolean(problem);
  });

  uploadButton.addEventListener('click', () => {
    if (fileInput.files.length) upload(fileInput.files[0]);
  });

  cancelButton.addEventListener('click', () => {
    if (cancelCurrent) {
      setStatus('Cancelling…');
      cancelCurrent();
    }
  });

  window.avatarUpload = { upload, describeError, refreshAvatar };

  refreshAvatar()
    .then(() => {
      root.dataset.ready = 'true';
    })
    .catch((err) => {
      setStatus(describeError(err), 'error');
      root.dataset.ready = 'true';
    });
})();
