/*
 * The upload page: the browser uploads straight to OSS; the server only hands out permission and checks.
 *
 * Avatar (#avatar-uploader):
 *   1. POST /api/uploads/post-policy/   a form signed by the server for one file: OSS itself enforces its
 *                                       size range, type and key (EntityTooLarge before anything is kept)
 *   2. POST <url> fields + file         multipart/form-data straight to OSS, with an XHR (byte progress)
 *   3. POST /api/me/avatar/ {key}       the server looks the object up in OSS and only then accepts it
 *   4. GET /api/me/                     a short-lived signed URL of the new avatar
 * Large files (#file-uploader), and an avatar sent to an explicit key by someone automating the page:
 *   1. POST /api/uploads/sts-token/     credentials that can write only under user/<id>/
 *   2. ali-oss multipartUpload          straight to OSS in small parts (under 100 KB, one PUT),
 *                                       to user/<id>/files/ (the avatar path asks upload-key for its key)
 *
 * Before any byte is sent, the page checks what it can: an avatar's type from its first bytes (the
 * name and the browser's guess are not trusted, as the server does not trust them either) and its size
 * against the server's limit (data-max-bytes). A multipart upload's checkpoint (upload id, key, parts
 * done; never a secret) is kept in localStorage per signed-in user (data-user-id), so after a reload the
 * same file picks up where it stopped, with fresh credentials from the API, and the next person on a
 * shared browser never resumes into the previous one's folder, which their credentials cannot write.
 *
 * Progress: ali-oss reports only finished parts, so the page also listens to the upload progress of the
 * XHRs it sends to the OSS endpoint (ali-oss uses XMLHttpRequest in browsers) and advances the bar
 * between acknowledged parts at the measured speed (ProgressMeter); speed and time left come from the
 * parts OSS acknowledged in the last few seconds.
 *
 * Messages come from Django's JavaScript catalog (gettext/interpolate), so they follow the page's
 * language. No inline script or style anywhere: the page works under `script-src 'self'`.
 */
(function () {
  'use strict';

  const uploaders = document.querySelectorAll('#avatar-uploader, #file-uploader');
  if (!uploaders.length || typeof OSS === 'undefined' || typeof ossCredentials === 'undefined') {
    return;
  }

  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || ((text, values) => text.replace(/%\((\w+)\)s/g, (_m, k) => values[k]));
  const say = (text, values) => interpolate(gettext(text), values || {}, true);

  const KB = 1024;
  const MB = 1024 * KB;
  // ali-oss's smallest part is 100 KB; small parts make a checkpoint (and the bar) advance often.
  const PART_SIZE = 128 * KB;
  const MAX_PARTS = 10000; // OSS's limit: bigger files get bigger parts
  const PARALLEL = 3;
  // Ask the API for fresh credentials at most this often (ali-oss refreshes on a timer, not on error).
  const MAX_REFRESH_INTERVAL_MS = 5 * 60 * 1000;
  // A checkpoint older than this is dropped: the bucket's lifecycle rules may have removed its parts.
  const CHECKPOINT_MAX_AGE_MS = 24 * 60 * 60 * 1000;
  const CHECKPOINT_PREFIX = 'ossUploadCheckpoint:v1:';
  const SPEED_WINDOW_MS = 5000;
  // How fast the bar creeps before OSS has acknowledged anything: a slow mobile uplink.
  const INITIAL_SPEED_GUESS = 48 * KB;
  const RENDER_INTERVAL_MS = 200;
  // OSS answers these when the STS credentials are missing, expired or no longer known (aliyun-facts.md).
  const CREDENTIAL_ERRORS = ['InvalidAccessKeyId', 'SecurityTokenExpired', 'InvalidSecurityToken'];

  const csrfInput = document.querySelector('input[name="csrfmiddlewaretoken"]');
  const csrfToken = csrfInput ? csrfInput.value : '';

  // --- Words -----------------------------------------------------------------------------------

  function formatBytes(n) {
    if (n >= MB) return say('%(n)s MB', { n: (n / MB).toFixed(1).replace(/\.0$/, '') });
    if (n >= KB) return say('%(n)s KB', { n: Math.round(n / KB) });
    return interpolate(ngettext('%(n)s byte', '%(n)s bytes', n), { n }, true);
  }

  function ngettext(singular, plural, n) {
    return window.ngettext ? window.ngettext(singular, plural, n) : n === 1 ? singular : plural;
  }

  function formatDuration(seconds) {
    const s = Math.max(1, Math.round(seconds));
    if (s < 60) return say('%(s)s s', { s });
    const m = Math.floor(s / 60);
    if (m < 60) return say('%(m)s min %(s)s s', { m, s: s % 60 });
    return say('%(h)s h %(m)s min', { h: Math.floor(m / 60), m: m % 60 });
  }

  const MESSAGES = {
    access_denied: () =>
      gettext('Access denied: your upload permission only covers your own folder, so the storage service refused this file.'),
    permission_expired: () =>
      gettext('Your upload permission expired and could not be renewed. Reload the page and try again.'),
    network: () =>
      gettext('Network problem: the storage service or this site could not be reached. Check your connection and try again.'),
    too_large: (max) => say('That file is too large: avatars may be at most %(max)s.', { max: formatBytes(max) }),
    not_an_image: () => gettext('That file is not an image we accept. Choose a PNG, JPEG, GIF or WebP picture.'),
    signed_out: () => gettext('You have been signed out. Reload the page and log in again.'),
    busy_server: () => gettext('The service is busy or temporarily unavailable. Please try again in a minute.'),
    not_found: () => gettext('The upload did not arrive at the storage service. Please try again.'),
    refused: () => gettext('The server refused the request. Reload the page and try again.'),
    form_refused: () => gettext('The storage service refused the upload form (it may have expired). Please try again.'),
  };

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail || `Request failed with status ${status}`);
      this.name = 'ApiError';
      this.status = status;
      this.code = code || '';
    }
  }

  /** The STS credentials were refused twice, the second time just after the API renewed them. */
  class PermissionExpired extends Error {
    constructor(cause) {
      super('upload permission expired');
      this.name = 'PermissionExpired';
      this.cause = cause;
    }
  }

  const isCancel = (err) => Boolean(err) && err.name === 'cancel';
  const isCredentialError = (err) => Boolean(err) && CREDENTIAL_ERRORS.includes(err.code);

  /** Turn an API, ali-oss or network error into one sentence for the status line. */
  function describeError(err, maxBytes) {
    if (err instanceof PermissionExpired) return MESSAGES.permission_expired();
    if (err instanceof ApiError) {
      switch (err.code) {
        case 'object_too_large':
          return MESSAGES.too_large(maxBytes);
        case 'not_an_image':
        case 'unsupported_content_type':
          return MESSAGES.not_an_image();
        case 'outside_prefix':
          return MESSAGES.access_denied();
        case 'object_not_found':
          return MESSAGES.not_found();
        case 'not_authenticated':
        case 'authentication_failed':
        case 'token_not_valid':
          return MESSAGES.signed_out();
        case 'permission_denied':
          return MESSAGES.refused();
        case 'network':
          return MESSAGES.network();
        default:
          if (err.status === 429 || err.status >= 500) return MESSAGES.busy_server();
          return err.message; // the API's own detail, already in the page's language
      }
    }
    const code = (err && err.code) || '';
    const status = err && typeof err.status === 'number' ? err.status : null;
    if (isCredentialError(err)) return MESSAGES.permission_expired();
    if (err && err.name === 'OssFormError' && (code === 'AccessDenied' || code === 'FileAlreadyExists')) {
      return MESSAGES.form_refused(); // the signed form expired or was used already: a new one will do
    }
    if (code === 'AccessDenied' || status === 403) return MESSAGES.access_denied();
    // The page's own limit; the form's is the declared size, which only a changed or tampered file passes.
    if (code === 'EntityTooLarge') return MESSAGES.too_large(Number.isFinite(maxBytes) ? maxBytes : err.maxBytes);
    if (status === -1 || status === -2 || status === 0 || err instanceof TypeError ||
        /Timeout|Network|RequestError|XHR error/i.test(`${err && err.name} ${err && err.message}`)) {
      return MESSAGES.network();
    }
    return say('The upload failed: %(reason)s.', { reason: (err && err.message) || 'unknown error' });
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
      throw new ApiError(0, 'network', MESSAGES.network());
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

  function isLocalHost(hostname) {
    return hostname === 'localhost' || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.startsWith('[');
  }

  /** An ali-oss client on fresh credentials (`answer` from the API) that keeps itself fresh during long uploads. */
  function clientFor(answer, stsTokenUrl) {
    const endpoint = new URL(answer.endpoint);
    const lifetimeMs = new Date(answer.expiration).getTime() - Date.now();
    return new OSS({
      // ali-oss names regions "oss-cn-hangzhou"; the API gives the standard id, and V4 signing strips "oss-" again.
      region: `oss-${answer.region}`,
      endpoint: answer.endpoint,
      secure: endpoint.protocol === 'https:',
      // An IP or localhost endpoint (the local sandbox) needs path-style /<bucket>/<key> addressing.
      sldEnable: isLocalHost(endpoint.hostname),
      bucket: answer.bucket,
      // Exactly {accessKeyId, accessKeySecret, stsToken} (static/js/oss-credentials.js): the API's endpoint,
      // region and bucket would otherwise be merged into the client's options at each refresh.
      ...ossCredentials.toRefreshSTSToken(answer),
      authorizationV4: true,
      refreshSTSToken: ossCredentials.refreshSTSTokenWith(() => api('POST', stsTokenUrl, {})),
      // Refresh well before expiry: every third of the token's life, at most every 5 minutes (the cap also
      // protects against a browser clock far behind the server's).
      refreshSTSTokenInterval: Math.max(1000, Math.min(MAX_REFRESH_INTERVAL_MS, lifetimeMs / 3)),
      timeout: 120 * 1000,
      retryMax: 2,
    });
  }

  // --- What a file is, before any byte leaves ------------------------------------------------------

  const MAGIC = [
    { type: 'image/png', test: (b) => b.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x) },
    { type: 'image/jpeg', test: (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
    { type: 'image/gif', test: (b) => /^GIF8[79]a/.test(String.fromCharCode(...b.slice(0, 6))) },
    {
      type: 'image/webp',
      test: (b) => String.fromCharCode(...b.slice(0, 4)) === 'RIFF' && String.fromCharCode(...b.slice(8, 12)) === 'WEBP',
    },
  ];

  /** The image type the file's first bytes say (the server checks the same magic numbers), or null. */
  async function sniffImageType(file) {
    const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
    const match = MAGIC.find((m) => m.test(head));
    return match ? match.type : null;
  }

  // --- Resuming: ali-oss checkpoints in localStorage ----------------------------------------------

  const fingerprint = (file) => `${file.name}\u0000${file.size}\u0000${file.lastModified}`;

  const checkpoints = {
    key: (scope, file) => `${CHECKPOINT_PREFIX}${scope}:${fingerprint(file)}`,
    load(scope, file) {
      try {
        const saved = JSON.parse(localStorage.getItem(this.key(scope, file)) || 'null');
        if (saved && Date.now() - saved.savedAt < CHECKPOINT_MAX_AGE_MS && saved.fileSize === file.size) return saved;
      } catch (err) {
        /* unreadable: start over */
      }
      this.drop(scope, file);
      return null;
    },
    save(scope, file, checkpoint) {
      const { name, fileSize, partSize, uploadId, doneParts } = checkpoint;
      try {
        localStorage.setItem(
          this.key(scope, file),
          JSON.stringify({ name, fileSize, partSize, uploadId, doneParts, savedAt: Date.now() }),
        );
      } catch (err) {
        /* storage full or disabled: the upload still works, it just cannot resume */
      }
    },
    drop(scope, file) {
      try {
        localStorage.removeItem(this.key(scope, file));
      } catch (err) {
        /* nothing to do */
      }
    },
  };

  const partSizeFor = (size) => Math.max(PART_SIZE, Math.ceil(size / MAX_PARTS / KB) * KB);
  const bytesDone = (checkpoint) =>
    checkpoint.doneParts.reduce(
      (sum, part) => sum + Math.min(checkpoint.partSize, checkpoint.fileSize - (part.number - 1) * checkpoint.partSize),
      0,
    );

  // --- Progress: bytes, speed, time left ------------------------------------------------------------

  /** Bytes really sent, from the upload progress events of the XHRs ali-oss makes to `origin`. */
  const xhrWatch = {
    listeners: new Set(),
    install() {
      const open = XMLHttpRequest.prototype.open;
      const send = XMLHttpRequest.prototype.send;
      XMLHttpRequest.prototype.open = function (method, url, ...rest) {
        // ali-oss opens protocol-relative URLs ("//host/bucket/key?partNumber=…"): resolve them.
        try {
          this.ossUploadUrl = new URL(String(url), window.location.href).href;
        } catch (err) {
          this.ossUploadUrl = '';
        }
        this.ossUploadMethod = String(method).toUpperCase();
        return open.call(this, method, url, ...rest);
      };
      XMLHttpRequest.prototype.send = function (body) {
        const url = this.ossUploadUrl || '';
        for (const listener of xhrWatch.listeners) {
          if (this.ossUploadMethod === 'PUT' && url.startsWith(listener.origin)) listener.attach(this, url);
        }
        return send.call(this, body);
      };
    },
  };
  xhrWatch.install();

  /**
   * What the bar shows. Two facts arrive: parts OSS has acknowledged (exact, but only one per part) and
   * the bytes the page's XHRs have handed to the network (smooth, but the browser buffers ahead of the
   * wire, so it runs early). Between the two, the bar advances at the speed measured from acknowledged
   * parts (before the first one, at a cautious guess), so it moves steadily on a slow link instead of
   * jumping part by part, and never shows more than has left the page.
   */
  class ProgressMeter {
    constructor(bar, figures) {
      this.bar = bar;
      this.figures = figures;
      this.timer = null;
      this.reset(0, 0);
    }

    reset(total, alreadyDone) {
      this.total = total;
      this.confirmed = alreadyDone; // bytes OSS has acknowledged
      this.shown = alreadyDone;
      this.inFlight = new Map(); // XHR -> bytes it has handed to the network
      this.acks = [{ t: performance.now(), bytes: alreadyDone }]; // for the speed
      this.lastTick = performance.now();
    }

    start(total, alreadyDone) {
      this.reset(total, alreadyDone || 0);
      this.render();
      clearInterval(this.timer);
      this.timer = setInterval(() => this.tick(), RENDER_INTERVAL_MS);
    }

    stop() {
      clearInterval(this.timer);
      this.timer = null;
    }

    /** Follow the PUTs this upload sends to `origin` (parts, or a single PUT). */
    watch(origin) {
      const meter = this;
      const listener = {
        origin,
        attach(xhr) {
          xhr.upload.addEventListener('progress', (event) => meter.inFlight.set(xhr, event.loaded));
          xhr.addEventListener('loadend', () => meter.inFlight.delete(xhr));
        },
      };
      xhrWatch.listeners.add(listener);
      return () => xhrWatch.listeners.delete(listener);
    }

    /** OSS acknowledged this many bytes in all. */
    confirm(bytes) {
      if (bytes <= this.confirmed) return;
      this.confirmed = bytes;
      const now = performance.now();
      this.acks.push({ t: now, bytes });
      while (this.acks.length > 2 && now - this.acks[1].t > SPEED_WINDOW_MS) this.acks.shift();
    }

    /** Bytes per second, measured from acknowledgements; null until there is one. */
    speed() {
      if (this.acks.length < 2) return null;
      const first = this.acks[0];
      const last = this.acks[this.acks.length - 1];
      return last.t > first.t ? (last.bytes - first.bytes) / ((last.t - first.t) / 1000) : null;
    }

    tick() {
      const now = performance.now();
      const seconds = (now - this.lastTick) / 1000;
      this.lastTick = now;
      let handedOver = 0;
      for (const bytes of this.inFlight.values()) handedOver += bytes;
      const ceiling = Math.min(this.total, this.confirmed + handedOver);
      const rate = this.speed() || INITIAL_SPEED_GUESS;
      this.shown = Math.max(this.confirmed, Math.min(ceiling, this.shown + rate * seconds), this.shown);
      this.render();
    }

    render() {
      const shown = Math.min(this.total, this.shown);
      const fraction = this.total ? shown / this.total : 0;
      this.bar.value = Math.max(0, Math.min(100, Math.round(fraction * 100)));
      const parts = [say('%(done)s of %(total)s', { done: formatBytes(shown), total: formatBytes(this.total) })];
      const speed = this.speed();
      if (speed && this.timer) {
        parts.push(say('%(speed)s/s', { speed: formatBytes(speed) }));
        if (shown < this.total) {
          parts.push(say('%(time)s left', { time: formatDuration((this.total - shown) / speed) }));
        }
      }
      const text = this.total ? parts.join(' · ') : '';
      this.figures.textContent = text;
      if (text) this.bar.setAttribute('aria-valuetext', text);
    }

    finish() {
      this.stop();
      this.confirm(this.total);
      this.shown = this.total;
      this.inFlight.clear();
      this.render();
    }

    clear() {
      this.stop();
      this.reset(0, 0);
      this.bar.value = 0;
      this.bar.removeAttribute('aria-valuetext');
      this.figures.textContent = '';
    }
  }

  // --- One upload widget --------------------------------------------------------------------------

  class Uploader {
    constructor(root) {
      this.root = root;
      this.kind = root.dataset.kind; // "avatar" or "file"
      this.checkpointScope = `user-${root.dataset.userId}:${this.kind}`; // whose upload, which widget
      this.prefix = this.kind === 'avatar' ? '' : 'large-';
      this.urls = {
        me: root.dataset.meUrl,
        stsToken: root.dataset.stsTokenUrl,
        uploadKey: root.dataset.uploadKeyUrl,
        avatar: root.dataset.avatarUrl,
        postPolicy: root.dataset.postPolicyUrl, // a server-signed form, when the server offers one
      };
      this.maxBytes = Number(root.dataset.maxBytes) || Infinity;
      const el = (id) => root.querySelector(`[data-testid="${this.prefix}${id}"]`);
      const role = (name) => root.querySelector(`[data-role="${name}"]`);
      this.dropzone = role('dropzone');
      this.input = el('file-input');
      this.uploadButton = el('upload-button');
      this.retryButton = el('retry-button');
      this.cancelButton = el('cancel-button');
      this.statusLine = el('upload-status');
      this.preview = role('preview');
      this.previewImage = role('preview-image');
      this.previewIcon = role('preview-icon');
      this.meter = new ProgressMeter(el('upload-progress'), el('upload-figures'));
      this.image = root.querySelector('[data-testid="avatar-image"]');
      this.placeholder = root.querySelector('[data-testid="avatar-placeholder"]');
      this.uploadedKey = root.querySelector('[data-testid="large-uploaded-key"]');
      this.file = null; // the chosen file, once it passed the checks
      this.type = null; // its content type (an avatar's from its first bytes)
      this.busy = false;
      this.cancelCurrent = null;
      this.previewUrl = null;
      this.wire();
    }

    setStatus(text, kind) {
      this.statusLine.textContent = text;
      this.statusLine.dataset.kind = kind || 'info';
    }

    setBusy(value, cancellable) {
      this.busy = value;
      this.root.dataset.busy = String(value);
      this.uploadButton.disabled = value || !this.file;
      this.input.disabled = value;
      this.dropzone.classList.toggle('disabled', value);
      this.cancelButton.disabled = !(value && cancellable);
      if (value) this.retryButton.hidden = true;
    }

    showPreview(file, isImage) {
      if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
      this.previewUrl = null;
      if (!file) {
        this.preview.hidden = true;
        this.previewImage.removeAttribute('src');
        return;
      }
      this.root.querySelector('[data-role="file-name"]').textContent = file.name;
      this.root.querySelector('[data-role="file-size"]').textContent = formatBytes(file.size);
      this.previewImage.hidden = !isImage;
      this.previewIcon.hidden = isImage;
      if (isImage) {
        this.previewUrl = URL.createObjectURL(file);
        this.previewImage.src = this.previewUrl;
        this.previewImage.alt = say('Preview of %(name)s', { name: file.name });
      }
      this.preview.hidden = false;
    }

    /** Checks before any byte is sent. Returns a message for the person, or null when the file may go. */
    async check(file) {
      if (file.size === 0) return gettext('That file is empty. Choose another one.');
      if (this.kind !== 'avatar') return null;
      if (file.size > this.maxBytes) {
        return say('That file is %(size)s; avatars may be at most %(max)s.', {
          size: formatBytes(file.size),
          max: formatBytes(this.maxBytes),
        });
      }
      this.type = await sniffImageType(file);
      return this.type ? null : MESSAGES.not_an_image();
    }

    /** A file was picked or dropped: check it, preview it, say whether it can resume. */
    async choose(file) {
      if (this.busy) return;
      this.file = null;
      this.type = null;
      this.retryButton.hidden = true;
      this.meter.clear();
      this.uploadButton.textContent = gettext('Upload');
      if (!file) {
        this.showPreview(null);
        this.setBusy(false, false);
        return;
      }
      const problem = await this.check(file);
      this.showPreview(file, this.kind === 'avatar' && !problem);
      if (problem) {
        this.setStatus(problem, 'error');
        this.uploadButton.disabled = true;
        return;
      }
      this.file = file;
      this.type = this.type || file.type || 'application/octet-stream';
      const saved = checkpoints.load(this.checkpointScope, file);
      if (saved) {
        this.uploadButton.textContent = gettext('Resume upload');
        this.setStatus(
          say('%(name)s was partly uploaded (%(done)s of %(total)s); the upload resumes where it stopped.', {
            name: file.name,
            done: formatBytes(bytesDone(saved)),
            total: formatBytes(file.size),
          }),
        );
      } else {
        this.setStatus(say('Ready to upload %(name)s (%(size)s).', { name: file.name, size: formatBytes(file.size) }));
      }
      this.uploadButton.disabled = this.busy;
    }

    /** Fresh credentials from the API, then `operation(client, answer)`; when OSS says the credentials
     * are unknown or expired (InvalidAccessKeyId, SecurityTokenExpired), renew them once and try again. */
    async withCredentials(operation) {
      let answer = await api('POST', this.urls.stsToken, {});
      try {
        return await operation(clientFor(answer, this.urls.stsToken), answer);
      } catch (err) {
        if (!isCredentialError(err)) throw err;
        this.setStatus(gettext('Renewing the upload permission…'));
        answer = await api('POST', this.urls.stsToken, {});
        try {
          return await operation(clientFor(answer, this.urls.stsToken), answer);
        } catch (again) {
          throw isCredentialError(again) ? new PermissionExpired(again) : again;
        }
      }
    }

    /** Multipart upload of this.file to `key`, resuming from the saved checkpoint when there is one. */
    async sendInParts(client, answer, key) {
      const file = this.file;
      const saved = checkpoints.load(this.checkpointScope, file);
      const target = saved ? saved.name : key;
      const partSize = saved ? saved.partSize : partSizeFor(file.size);
      let uploadId = saved ? saved.uploadId : null;
      this.meter.start(file.size, saved ? bytesDone(saved) : 0);
      const unwatch = this.meter.watch(new URL(answer.endpoint).origin);
      this.cancelCurrent = () => client.cancel();
      this.setBusy(true, true);
      const options = {
        mime: this.type,
        partSize,
        parallel: PARALLEL,
        progress: (_fraction, checkpoint) => {
          if (!checkpoint || !checkpoint.uploadId) return;
          uploadId = checkpoint.uploadId;
          checkpoints.save(this.checkpointScope, file, checkpoint);
          this.meter.confirm(bytesDone(checkpoint));
        },
      };
      if (saved) options.checkpoint = { ...saved, doneParts: saved.doneParts.slice(), file };
      try {
        await client.multipartUpload(target, file, options);
        checkpoints.drop(this.checkpointScope, file);
        return target;
      } catch (err) {
        if (isCancel(err)) {
          checkpoints.drop(this.checkpointScope, file);
          // Throw away the parts already stored; the token allows AbortMultipartUpload on its own prefix.
          if (uploadId) await client.abortMultipartUpload(target, uploadId).catch(() => {});
        } else if (err && (err.name === 'abort' || err.code === 'NoSuchUpload')) {
          checkpoints.drop(this.checkpointScope, file); // the upload id is gone: the next try starts over
        }
        throw err;
      } finally {
        unwatch();
        this.cancelCurrent = null;
      }
    }

    /**
     * POST the server-signed form (`fields` first, then the file) straight to OSS, which enforces the
     * policy's size range, type and key itself: a file over the limit is refused with EntityTooLarge
     * before anything is stored. Resolves to the key; rejects with OSS's error code, or a cancel.
     */
    sendForm(form) {
      const file = this.file;
      const body = new FormData();
      Object.entries(form.fields).forEach(([name, value]) => body.append(name, value));
      body.append('file', file, file.name); // OSS ignores every field after the file
      this.meter.start(file.size, 0);
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        this.cancelCurrent = () => xhr.abort();
        this.setBusy(true, true);
        const done = () => {
          this.cancelCurrent = null;
        };
        // The body is a little larger than the file (the fields): count the file's share.
        xhr.upload.addEventListener('progress', (event) => {
          if (event.lengthComputable) this.meter.confirm(Math.round((event.loaded / event.total) * file.size));
        });
        xhr.addEventListener('load', () => {
          done();
          if (xhr.status >= 200 && xhr.status < 300) {
            resolve(form.key);
            return;
          }
          const xml = new DOMParser().parseFromString(xhr.responseText || '', 'application/xml');
          const text = (tag) => (xml.getElementsByTagName(tag)[0] || {}).textContent || '';
          const err = new Error(text('Message') || `storage answered ${xhr.status}`);
          err.name = 'OssFormError';
          err.code = text('Code');
          err.status = xhr.status;
          err.maxBytes = form.maxBytes; // the limit the signed policy set: the declared size
          reject(err);
        });
        xhr.addEventListener('error', () => {
          done();
          const err = new Error('XHR error');
          err.status = 0;
          reject(err);
        });
        xhr.addEventListener('abort', () => {
          done();
          reject(Object.assign(new Error('cancel'), { name: 'cancel' }));
        });
        xhr.open('POST', form.url);
        xhr.send(body);
      });
    }

    async keyFor(answer, explicitKey) {
      if (explicitKey) return explicitKey;
      if (checkpoints.load(this.checkpointScope, this.file)) return null; // the checkpoint knows its key
      if (this.kind === 'avatar') {
        const target = await api('POST', this.urls.uploadKey, { contentType: this.type, size: this.file.size });
        return target.key;
      }
      // ":" too: the session policy refuses every key with a colon (see aliyun/policy.py).
      const safeName = this.file.name.replace(/[\u0000-\u001f\u007f/\\:]/g, '_').slice(-200);
      const stamp = new Date().toISOString().slice(0, 10).replace(/-/g, '');
      const random = Math.random().toString(36).slice(2, 8);
      return `${answer.prefix}files/${stamp}-${random}-${safeName}`;
    }

    /**
     * Upload the chosen file. `explicitKey` is for people automating the page: the server normally
     * picks the key, and the credentials decide what may be written anyway.
     */
    async upload(explicitKey) {
      if (this.busy || !this.file) return false;
      this.setBusy(true, false);
      try {
        this.setStatus(gettext('Getting upload permission…'));
        const uploading = () =>
          this.setStatus(say('Uploading %(name)s (%(size)s)…', { name: this.file.name, size: formatBytes(this.file.size) }));
        let key;
        if (this.urls.postPolicy && !explicitKey) {
          const form = await api('POST', this.urls.postPolicy, {
            contentType: this.type,
            size: this.file.size,
            filename: this.file.name,
          });
          uploading();
          key = await this.sendForm(form);
        } else {
          key = await this.withCredentials(async (client, answer) => {
            const target = await this.keyFor(answer, explicitKey);
            uploading();
            return this.sendInParts(client, answer, target);
          });
        }
        this.meter.finish();
        if (this.kind === 'avatar') {
          this.setStatus(gettext('Checking the upload…'));
          await api('POST', this.urls.avatar, { key });
          const shown = await this.refreshAvatar();
          this.setStatus(
            shown ? gettext('Avatar updated.') : gettext('Avatar saved, but the image could not be displayed.'),
            shown ? 'success' : 'error',
          );
        } else {
          this.uploadedKey.textContent = say('Stored as %(key)s', { key });
          this.uploadedKey.hidden = false;
          this.setStatus(say('%(name)s uploaded.', { name: this.file.name }), 'success');
        }
        files.soon(); // storage's event reaches the server within seconds
        this.input.value = '';
        this.file = null;
        this.uploadButton.textContent = gettext('Upload');
        return true;
      } catch (err) {
        this.meter.stop();
        if (isCancel(err)) {
          this.meter.clear();
          this.setStatus(gettext('Upload cancelled. Nothing was changed.'), 'info');
        } else {
          this.setStatus(describeError(err, this.maxBytes), 'error');
          this.retryButton.hidden = !this.file;
          if (checkpoints.load(this.checkpointScope, this.file)) this.uploadButton.textContent = gettext('Resume upload');
        }
        return false;
      } finally {
        this.setBusy(false, false);
      }
    }

    showAvatar(url) {
      return new Promise((resolve) => {
        if (!url) {
          this.image.hidden = true;
          this.image.removeAttribute('src');
          this.placeholder.hidden = false;
          resolve(false);
          return;
        }
        this.image.onload = () => {
          this.image.hidden = false;
          this.placeholder.hidden = true;
          resolve(true);
        };
        this.image.onerror = () => resolve(false);
        this.image.src = url;
      });
    }

    async refreshAvatar() {
      const me = await api('GET', this.urls.me);
      return this.showAvatar(me.avatarUrl);
    }

    wire() {
      this.input.addEventListener('change', () => this.choose(this.input.files[0] || null));
      this.uploadButton.addEventListener('click', () => this.upload());
      this.retryButton.addEventListener('click', () => this.upload());
      this.cancelButton.addEventListener('click', () => {
        if (this.cancelCurrent) {
          this.setStatus(gettext('Cancelling…'));
          this.cancelCurrent();
        }
      });
      const zone = this.dropzone;
      const over = (event) => {
        event.preventDefault();
        if (!this.busy) zone.classList.add('dragover');
        event.dataTransfer.dropEffect = this.busy ? 'none' : 'copy';
      };
      zone.addEventListener('dragenter', over);
      zone.addEventListener('dragover', over);
      zone.addEventListener('dragleave', () => zone.classList.remove('dragover'));
      zone.addEventListener('drop', (event) => {
        event.preventDefault();
        zone.classList.remove('dragover');
        const file = event.dataTransfer && event.dataTransfer.files[0];
        if (file && !this.busy) this.choose(file);
      });
    }
  }

  // --- Your files (GET/DELETE /api/uploads/objects/, from the server's ledger) -------------------

  const files = (() => {
    const root = document.getElementById('your-files');
    if (!root) return { refresh: async () => {}, soon: () => {} };
    const body = root.querySelector('[data-role="files"]');
    const empty = root.querySelector('[data-testid="files-empty"]');
    const more = root.querySelector('[data-testid="files-more"]');
    const status = root.querySelector('[data-testid="files-status"]');
    const url = root.dataset.objectsUrl;
    let next = null;
    const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      dateStyle: 'medium',
      timeStyle: 'short',
    });

    function row(item) {
      const tr = document.createElement('tr');
      tr.dataset.key = item.key;
      const name = document.createElement('td');
      name.className = 'file-name';
      name.textContent = item.key.split('/').pop();
      name.title = item.key;
      const size = document.createElement('td');
      size.className = 'numeric';
      size.textContent = formatBytes(item.size);
      const when = document.createElement('td');
      const time = document.createElement('time');
      time.dateTime = item.uploadedAt;
      time.textContent = dateFormat.format(new Date(item.uploadedAt));
      when.appendChild(time);
      const actions = document.createElement('td');
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'secondary danger';
      remove.dataset.testid = 'file-delete';
      remove.textContent = gettext('Delete');
      remove.setAttribute('aria-label', say('Delete %(name)s', { name: name.textContent }));
      remove.addEventListener('click', () => destroy(item, remove));
      actions.appendChild(remove);
      tr.append(name, size, when, actions);
      return tr;
    }

    async function load(pageUrl, append) {
      const page = await api('GET', pageUrl);
      if (!append) body.replaceChildren();
      page.results.forEach((item) => body.appendChild(row(item)));
      next = page.next;
      more.hidden = !next;
      empty.hidden = body.children.length > 0;
      root.dataset.loaded = 'true';
    }

    async function refresh() {
      try {
        await load(url, false);
      } catch (err) {
        status.textContent = describeError(err);
        status.dataset.kind = 'error';
      }
    }

    async function destroy(item, button) {
      const name = item.key.split('/').pop();
      button.disabled = true;
      try {
        await api('DELETE', `${url}?key=${encodeURIComponent(item.key)}`);
        status.textContent = say('%(name)s deleted.', { name });
        status.dataset.kind = 'success';
        await refresh();
      } catch (err) {
        button.disabled = false;
        status.textContent =
          err && err.code === 'object_in_use'
            ? gettext('That file is your current avatar; choose another avatar first.')
            : describeError(err);
        status.dataset.kind = 'error';
      }
    }

    more.addEventListener('click', () => next && load(next, true).catch(() => {}));
    return {
      refresh,
      soon: () => [1500, 4000].forEach((ms) => setTimeout(refresh, ms)),
    };
  })();

  // A file dropped beside a drop zone must not make the browser navigate away from the page.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  const widgets = {};
  uploaders.forEach((root) => {
    widgets[root.dataset.kind] = new Uploader(root);
  });

  // For tests and for people automating the page.
  window.avatarUpload = {
    widgets,
    describeError,
    async upload(file, explicitKey) {
      const widget = widgets.avatar;
      await widget.choose(file);
      return widget.file ? widget.upload(explicitKey) : false;
    },
    refreshAvatar: () => widgets.avatar.refreshAvatar(),
    refreshFiles: () => files.refresh(),
  };
  files.refresh();

  const avatar = widgets.avatar;
  (avatar ? avatar.refreshAvatar() : Promise.resolve())
    .catch((err) => avatar.setStatus(describeError(err, avatar.maxBytes), 'error'))
    .finally(() => {
      uploaders.forEach((root) => {
        root.dataset.ready = 'true';
      });
    });
})();
