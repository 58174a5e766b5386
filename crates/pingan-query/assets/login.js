// Dashboard login and DEV marker. Loaded before the dashboard bundle (and outside it, so it needs
// no build step): asks the server who we are (GET /v1/session); with a session, or in development
// mode without tokens, it starts the dashboard (/assets/app.js); otherwise it asks for a read token
// once and trades it for a session cookie (HttpOnly, SameSite=Strict: page script never holds the
// token afterwards). Styles are set through the DOM, which the content security policy allows.
(function () {
  'use strict';
  function el(tag, style, text) {
    var e = document.createElement(tag);
    Object.assign(e.style, style || {});
    if (text) e.textContent = text;
    return e;
  }
  function start() {
    var s = document.createElement('script');
    s.src = '/assets/app.js';
    document.body.appendChild(s);
  }
  function mark(who) {
    var title = document.querySelector('header .title');
    if (!title) return;
    if (who.dev) {
      var dev = el('span', { background: '#c62828', color: '#fff', padding: '2px 8px', marginLeft: '10px',
        borderRadius: '4px', fontWeight: '700', letterSpacing: '1px' }, 'DEV');
      dev.id = 'dev-marker';
      dev.title = 'development mode: public development keys, not for real calls';
      title.appendChild(dev);
    }
    if (who.name && who.name !== 'dev') {
      var user = el('span', { marginLeft: '10px', opacity: '0.8', fontSize: '0.8em' },
        who.name + ' · ' + who.role + ' · ' + who.scope);
      user.id = 'session-user';
      var out = el('button', { marginLeft: '6px' }, '退出 / log out');
      out.className = 'toggle';
      out.addEventListener('click', function () {
        fetch('/v1/session', { method: 'DELETE', credentials: 'same-origin' }).then(function () { location.reload(); });
      });
      title.appendChild(user);
      title.appendChild(out);
    }
  }
  function login() {
    var shade = el('div', { position: 'fixed', inset: '0', background: 'rgba(5,12,24,0.92)', display: 'flex',
      alignItems: 'center', justifyContent: 'center', zIndex: '1000' });
    var form = el('form', { background: '#0d1b2e', border: '1px solid #29476b', padding: '28px 32px', borderRadius: '8px',
      color: '#dfe9f5', minWidth: '320px', display: 'flex', flexDirection: 'column', gap: '12px' });
    form.id = 'login-form';
    form.appendChild(el('h2', { margin: '0' }, '登录 · Sign in'));
    form.appendChild(el('div', { fontSize: '0.85em', opacity: '0.8' }, '请输入访问令牌 / Enter your read token'));
    var input = el('input', { padding: '8px', fontSize: '1em' });
    input.type = 'password';
    input.id = 'login-token';
    input.autocomplete = 'current-password';
    input.required = true;
    var button = el('button', { padding: '8px', fontSize: '1em' }, '登录 / Sign in');
    button.type = 'submit';
    var error = el('div', { color: '#ff8a80', minHeight: '1.2em', fontSize: '0.85em' });
    error.id = 'login-error';
    form.appendChild(input);
    form.appendChild(button);
    form.appendChild(error);
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      fetch('/v1/session', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: input.value }),
      }).then(function (r) {
        input.value = '';
        if (r.ok) location.reload();
        else error.textContent = r.status === 401 ? '令牌无效 / invalid token' : '登录失败 / sign-in failed (' + r.status + ')';
      }).catch(function () { error.textContent = '无法连接 / cannot reach the server'; });
    });
    shade.appendChild(form);
    document.body.appendChild(shade);
    input.focus();
  }
  fetch('/v1/session', { credentials: 'same-origin' }).then(function (r) {
    if (r.ok) return r.json().then(function (who) { mark(who); start(); });
    login();
  }).catch(login);
})();
