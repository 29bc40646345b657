// The provider's HTML pages: login, consent, logout confirmation, signed out, error.
// Field names and button labels are what the browser helpers in ../lib/browser.mjs look for.

const escapeHtml = (value) => String(value ?? '').replace(/[&<>"']/g, (ch) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[ch]));

function layout(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}input,button{display:block;width:100%;margin:.5em 0;padding:.4em}.error{color:#b00020}</style>
</head>
<body><h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`;
}

/** The sign-in form; `error` is shown above it after a wrong password. */
export function loginPage({ uid, clientId, loginHint, error }) {
  return layout('Sign-in', `<p>Sign in to continue to <strong>${escapeHtml(clientId)}</strong>.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form id="op-login" autocomplete="off" action="/interaction/${escapeHtml(uid)}/login" method="post">
  <label>Username or email <input required type="text" name="login" value="${escapeHtml(loginHint)}" autofocus></label>
  <label>Password <input required type="password" name="password"></label>
  <button type="submit" id="op-login-submit">Sign-in</button>
</form>
<p><a href="/interaction/${escapeHtml(uid)}/abort">Cancel</a></p>`);
}

/** The consent page listing what the client asks for. */
export function consentPage({ uid, clientId, details, accountId }) {
  const scopes = [
    ...(details.missingOIDCScope ?? []),
    ...Object.values(details.missingResourceScopes ?? {}).flat(),
  ];
  const claims = details.missingOIDCClaims ?? [];
  return layout('Authorize', `<p>Signed in as <strong>${escapeHtml(accountId)}</strong>.</p>
<p><strong>${escapeHtml(clientId)}</strong> asks for:</p>
<ul>${scopes.map((scope) => `<li>scope ${escapeHtml(scope)}</li>`).join('')}${claims.map((claim) => `<li>claim ${escapeHtml(claim)}</li>`).join('')}</ul>
<form id="op-consent" action="/interaction/${escapeHtml(uid)}/confirm" method="post">
  <button type="submit" id="op-consent-submit" autofocus>Continue</button>
</form>
<p><a href="/interaction/${escapeHtml(uid)}/abort">Cancel</a></p>`);
}

/** RP-initiated logout confirmation; `form` is the provider's own hidden form (id="op.logoutForm"). */
export function logoutPage(form, host) {
  return layout('Sign-out', `<p>Do you want to sign out from ${escapeHtml(host)}?</p>
${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout" id="op-logout-yes" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm" id="op-logout-no">No, stay signed in</button>`);
}

/** Shown after logout when no post_logout_redirect_uri was given. */
export function loggedOutPage(clientId) {
  return layout('Signed out', `<p id="op-signed-out">You are signed out${clientId ? ` of ${escapeHtml(clientId)}` : ''}.</p>`);
}

/** Error page for protocol errors shown to the user. */
export function errorPage(error, description) {
  return layout('Error', `<p class="error" id="op-error">${escapeHtml(error)}</p><p id="op-error-description">${escapeHtml(description)}</p>`);
}
