//! The mobile web form a citizen sees after scanning a doorplate, and its error pages.
//!
//! One self-contained HTML page in Chinese: inline CSS and JS, no external resources, a
//! per-response CSP nonce for the script. Every server-provided value is HTML-escaped; the
//! script only writes with `textContent`. The report is posted with `fetch` to
//! `/v1/qr-scans` carrying a client-generated `event_id` that is kept across retries until the
//! report is accepted, so a citizen pressing 提交 twice on a bad network files one report.

use std::fmt::Write as _;

/// What the form shows about the plate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceView {
    /// Doorplate id.
    pub plate_id: String,
    /// Its verified signature (posted back with the report).
    pub sig: String,
    /// Registered address, e.g. `莘松路958弄12号301室`.
    pub address: String,
    /// Town name, e.g. `七宝镇`.
    pub town: Option<String>,
    /// Compound name, e.g. `上海康城`.
    pub compound: Option<String>,
}

/// Which page to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormPage {
    /// The report form.
    Form(PlaceView),
    /// The signature did not verify (403).
    BadSignature,
    /// The plate is not in service (404).
    UnknownPlate,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page's Content-Security-Policy: nothing external, only the nonce'd inline script and
/// style, `fetch` only to this origin.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

const STYLE: &str = r#"
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.6 -apple-system,"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",sans-serif;background:#f2f4f7;color:#1d2330}
main{max-width:560px;margin:0 auto;padding:0 0 32px}
header{background:#0b3d91;color:#fff;padding:18px 16px 14px}
header h1{margin:0;font-size:21px;letter-spacing:1px}
header p{margin:2px 0 0;font-size:13px;opacity:.85}
.sos{display:block;margin:12px 16px;padding:12px 14px;border-radius:10px;background:#fdecea;color:#b3261e;font-weight:600;text-decoration:none}
.sos b{font-size:20px}
.card{background:#fff;margin:12px 16px;padding:16px;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card h2{margin:0 0 8px;font-size:15px;color:#55607a;font-weight:600}
.addr{margin:0;font-size:19px;font-weight:600;word-break:break-all}
.meta{margin:4px 0 0;font-size:13px;color:#6b7489}
fieldset{border:0;margin:0 0 14px;padding:0}
legend,label.f{display:block;font-weight:600;margin:0 0 8px}
.kinds{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.kinds label{display:flex;align-items:center;justify-content:center;gap:6px;min-height:48px;border:2px solid #d5dae3;border-radius:10px;font-size:17px;cursor:pointer;background:#fff}
.kinds input{width:18px;height:18px;accent-color:#0b3d91}
.kinds label:has(input:checked){border-color:#0b3d91;background:#eaf0fb}
textarea,input[type=tel]{width:100%;font:inherit;font-size:16px;padding:10px 12px;border:1px solid #c4cad6;border-radius:10px;background:#fff;color:inherit}
textarea{min-height:120px;resize:vertical}
textarea:focus,input:focus{outline:2px solid #0b3d91;outline-offset:1px}
.counter{text-align:right;font-size:13px;color:#6b7489;margin:4px 0 12px}
.counter.over{color:#b3261e}
.hint{font-size:13px;color:#6b7489;margin:6px 0 14px}
.error{background:#fdecea;color:#b3261e;border-radius:10px;padding:10px 12px;margin:0 0 12px;font-weight:600}
button{width:100%;min-height:50px;border:0;border-radius:10px;background:#0b3d91;color:#fff;font:inherit;font-size:18px;font-weight:600;cursor:pointer}
button:disabled{background:#8a9bbd}
button.secondary{background:#fff;color:#0b3d91;border:2px solid #0b3d91;margin-top:12px}
.done{text-align:center}
.done .ok{font-size:44px;line-height:1;color:#1e7d34}
.eid{font:600 15px/1.4 ui-monospace,Menlo,Consolas,monospace;background:#f2f4f7;border-radius:8px;padding:10px;word-break:break-all;user-select:all}
.page h2{font-size:20px;margin:0 0 8px;color:#b3261e}
footer{margin:18px 16px 0;font-size:12px;color:#8a93a6;text-align:center}
[hidden]{display:none!important}
"#;

const SCRIPT: &str = r#"
(function () {
  'use strict';
  var form = document.getElementById('report');
  var desc = document.getElementById('description');
  var count = document.getElementById('count');
  var counter = document.getElementById('counter');
  var phone = document.getElementById('phone');
  var err = document.getElementById('error');
  var btn = document.getElementById('submit');
  var done = document.getElementById('done');
  var eid = document.getElementById('event-id');
  var again = document.getElementById('again');
  var MAX = 500;

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') { return window.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  // One id per report, kept across retries until the report is accepted: a retry after a
  // network error or a 503 can never file the same report twice.
  var eventId = uuid();

  function chars(s) { return Array.from(s).length; }
  function updateCount() {
    var n = chars(desc.value);
    count.textContent = String(n);
    counter.classList.toggle('over', n > MAX);
  }
  desc.addEventListener('input', updateCount);
  updateCount();

  // A correction clears the last complaint.
  form.addEventListener('change', function () { err.hidden = true; });
  desc.addEventListener('input', function () { err.hidden = true; });

  function showError(msg) { err.textContent = msg; err.hidden = false; err.scrollIntoView({ block: 'nearest' }); }

  var FIELDS = { kind: '事件类型', description: '情况描述', contact_phone: '联系电话' };
  var REASONS = { too_long: '太长', too_short: '不能为空', required: '必填', bad_phone: '号码格式不正确', bad_enum: '请从选项中选择', control_character: '含有不允许的字符' };
  function explain(details) {
    return details.map(function (d) {
      return (FIELDS[d.field] || d.field || '内容') + '：' + (REASONS[d.code] || '格式不正确');
    }).join('；');
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    err.hidden = true;
    var kind = form.querySelector('input[name="kind"]:checked');
    var text = desc.value.trim();
    if (!kind) { showError('请选择事件类型。'); return; }
    if (!text) { showError('请填写情况描述。'); desc.focus(); return; }
    if (chars(text) > MAX) { showError('情况描述最多' + MAX + '字。'); desc.focus(); return; }
    var body = { plate_id: form.dataset.plate, sig: form.dataset.sig, kind: kind.value, description: text, event_id: eventId };
    var tel = phone.value.trim();
    if (tel) { body.contact_phone = tel; }
    btn.disabled = true;
    btn.textContent = '提交中…';
    fetch('/v1/qr-scans', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        return { status: r.status, body: j, retry: r.headers.get('Retry-After') };
      });
    }).then(function (res) {
      if (res.status === 202) {
        eid.textContent = (res.body && res.body.event_id) || eventId;
        form.hidden = true;
        done.hidden = false;
        eventId = uuid();
        done.scrollIntoView({ block: 'start' });
      } else if (res.status === 429) {
        showError('提交过于频繁，请' + (res.retry ? res.retry + '秒后' : '稍后') + '再试。紧急情况请直接拨打110。');
      } else if (res.status === 403) {
        showError('二维码无效，请重新扫描门牌上的二维码。紧急情况请直接拨打110。');
      } else if (res.status === 404) {
        showError('该门牌未登记。紧急情况请直接拨打110。');
      } else if (res.status === 422) {
        var details = (res.body && res.body.error && res.body.error.details) || [];
        showError('请检查填写内容：' + explain(details));
      } else {
        showError('提交失败，请稍后重试（重试不会重复报警）。紧急情况请直接拨打110。');
      }
    }).catch(function () {
      showError('网络异常，请检查网络后重试（重试不会重复报警）。紧急情况请直接拨打110。');
    }).then(function () {
      btn.disabled = false;
      btn.textContent = '提交';
    });
  });

  again.addEventListener('click', function () {
    form.reset();
    updateCount();
    err.hidden = true;
    done.hidden = true;
    form.hidden = false;
  });
})();
"#;

fn head(out: &mut String, title: &str, nonce: &str) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n<link rel=\"icon\" href=\"data:,\">\n<meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{}</title>\n<style nonce=\"{}\">{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <header><h1>闵行平安 · 扫码报警求助</h1><p>上海市公安局闵行分局 110 指挥中心</p></header>\n\
         <a class=\"sos\" href=\"tel:110\">紧急情况请直接拨打 <b>110</b></a>\n",
        escape(title),
        escape(nonce),
    );
}

fn foot(out: &mut String) {
    out.push_str(
        "<footer>门牌二维码仅用于报警求助。恶意虚假报警将依法追究责任。</footer>\n</main>\n",
    );
}

/// Renders `page` with the CSP `nonce`.
pub fn render(page: &FormPage, nonce: &str) -> String {
    let mut out = String::with_capacity(12 * 1024);
    match page {
        FormPage::BadSignature => {
            head(&mut out, "二维码无效", nonce);
            out.push_str(
                "<section class=\"card page\" role=\"alert\"><h2>二维码无效</h2>\
                 <p>这个二维码无法验证，可能已损坏、过期或被篡改。请扫描门牌上原有的二维码，不要扫描张贴或转发的二维码。</p>\
                 <p>如需报警求助，请直接拨打 <a href=\"tel:110\">110</a>。</p></section>\n",
            );
            foot(&mut out);
        }
        FormPage::UnknownPlate => {
            head(&mut out, "未找到门牌", nonce);
            out.push_str(
                "<section class=\"card page\" role=\"alert\"><h2>未找到该门牌</h2>\
                 <p>该门牌不在登记范围内，可能已注销。请联系所在居委会或派出所更新门牌。</p>\
                 <p>如需报警求助，请直接拨打 <a href=\"tel:110\">110</a>。</p></section>\n",
            );
            foot(&mut out);
        }
        FormPage::Form(place) => {
            head(&mut out, "扫码报警求助", nonce);
            let meta: Vec<String> = [place.town.as_deref(), place.compound.as_deref()]
                .into_iter()
                .flatten()
                .map(escape)
                .chain(std::iter::once(format!("门牌 {}", escape(&place.plate_id))))
                .collect();
            let _ = writeln!(
                out,
                "<section class=\"card\"><h2>您所在的位置</h2><p class=\"addr\" id=\"address\">{}</p>\
                 <p class=\"meta\">{}</p></section>",
                escape(&place.address),
                meta.join(" · "),
            );
            let _ = write!(
                out,
                "<form id=\"report\" class=\"card\" data-plate=\"{}\" data-sig=\"{}\" novalidate>\n\
                 <fieldset><legend>事件类型</legend><div class=\"kinds\">\n\
                 <label><input type=\"radio\" name=\"kind\" value=\"alarm\"> 报警</label>\n\
                 <label><input type=\"radio\" name=\"kind\" value=\"help\"> 求助</label>\n\
                 <label><input type=\"radio\" name=\"kind\" value=\"dispute\"> 纠纷</label>\n\
                 <label><input type=\"radio\" name=\"kind\" value=\"consult\"> 咨询</label>\n\
                 </div></fieldset>\n\
                 <label class=\"f\" for=\"description\">情况描述</label>\n\
                 <textarea id=\"description\" name=\"description\" maxlength=\"500\" rows=\"5\" \
                 placeholder=\"请简要说明发生了什么、涉及几人、是否有人受伤…\"></textarea>\n\
                 <div class=\"counter\" id=\"counter\"><span id=\"count\">0</span>/500</div>\n\
                 <label class=\"f\" for=\"phone\">联系电话（选填）</label>\n\
                 <input id=\"phone\" name=\"phone\" type=\"tel\" inputmode=\"tel\" maxlength=\"20\" autocomplete=\"tel\" placeholder=\"便于民警回拨\">\n\
                 <p class=\"hint\">号码仅用于民警回拨，系统中加密保存，不会公开。</p>\n\
                 <p id=\"error\" class=\"error\" role=\"alert\" hidden></p>\n\
                 <button id=\"submit\" type=\"submit\">提交</button>\n\
                 </form>\n",
                escape(&place.plate_id),
                escape(&place.sig),
            );
            out.push_str(
                "<section id=\"done\" class=\"card done\" role=\"status\" hidden>\
                 <div class=\"ok\">✓</div><h2>已提交，民警将尽快处理</h2>\
                 <p>事件编号</p><p id=\"event-id\" class=\"eid\"></p>\
                 <p class=\"hint\">请记下事件编号以便查询。情况紧急请直接拨打110。</p>\
                 <button id=\"again\" type=\"button\" class=\"secondary\">再报一件</button></section>\n",
            );
            foot(&mut out);
            let _ = writeln!(out, "<script nonce=\"{}\">{SCRIPT}</script>", escape(nonce));
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(address: &str) -> FormPage {
        FormPage::Form(PlaceView {
            plate_id: "MHQR-101-00100215".into(),
            sig: "dev.0011\"><script>".into(),
            address: address.into(),
            town: Some("莘庄镇".into()),
            compound: Some("<b>康城</b>".into()),
        })
    }

    #[test]
    fn everything_rendered_is_escaped() {
        let html = render(&place("莘松路958弄<script>alert(1)</script>"), "n0nce");
        assert!(html.contains("莘松路958弄&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;b&gt;康城&lt;/b&gt;"));
        assert!(html.contains("data-sig=\"dev.0011&quot;&gt;&lt;script&gt;\""));
        assert_eq!(
            html.matches("<script").count(),
            1,
            "only the page's own script"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external resources"
        );
    }

    #[test]
    fn the_form_has_the_four_kinds_and_the_counter() {
        let html = render(&place("莘松路958弄12号301室"), "n");
        for k in [
            "报警",
            "求助",
            "纠纷",
            "咨询",
            "value=\"alarm\"",
            "value=\"consult\"",
            "/500",
            "事件编号",
            "randomUUID",
        ] {
            assert!(html.contains(k), "{k}");
        }
        assert!(html.contains("<script nonce=\"n\">"));
        assert!(content_security_policy("n").contains("script-src 'nonce-n'"));
    }

    #[test]
    fn error_pages_tell_the_citizen_to_dial_110() {
        for p in [FormPage::BadSignature, FormPage::UnknownPlate] {
            let html = render(&p, "n");
            assert!(html.contains("110"));
            assert!(!html.contains("<form"));
        }
    }
}
