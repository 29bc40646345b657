//! The provider's HTML: the login form, error and signed-out pages. Every value that came from
//! a request or a configuration is escaped here, in one place.

/// The banner every page carries.
pub(crate) const NOT_FOR_PRODUCTION: &str =
    "Development OpenID Provider: NOT FOR PRODUCTION. Test users, test keys, no security.";

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:32em;margin:2em auto}}\
         .banner{{background:#b00020;color:#fff;padding:.6em;font-weight:bold}}\
         .error{{color:#b00020}} label{{display:block;margin:.6em 0}}</style></head>\
         <body><div class=\"banner\" role=\"alert\">{banner}</div>{body}</body></html>\n",
        title = escape(title),
        banner = escape(NOT_FOR_PRODUCTION),
    )
}

/// The login form for a pending authorization request.
pub(crate) fn login_page(
    login_id: &str,
    action: &str,
    client_id: &str,
    username: &str,
    note: Option<&str>,
    error: Option<&str>,
) -> String {
    let note = note
        .map(|n| format!("<p id=\"note\">{}</p>", escape(n)))
        .unwrap_or_default();
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{note}{error}\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"login_id\" value=\"{login_id}\">\
             <label>Username <input name=\"username\" value=\"{username}\" autocomplete=\"username\" autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
             <button type=\"submit\">Sign in</button></form>",
            client = escape(client_id),
            action = escape(action),
            login_id = escape(login_id),
            username = escape(username),
        ),
    )
}

/// A page explaining why a request cannot be answered by redirecting back to the client.
pub(crate) fn error_page(error: &str, description: &str) -> String {
    page(
        "Error",
        &format!(
            "<h1>Error</h1><p><code id=\"error\">{}</code></p><p id=\"error_description\">{}</p>",
            escape(error),
            escape(description)
        ),
    )
}

/// A page with a title and one message.
pub(crate) fn message_page(title: &str, message: &str) -> String {
    page(
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message)),
    )
}

/// The page after a sign-out that asked for no redirect: with a link back to the client when
/// one was identified and registered where to return to.
pub(crate) fn signed_out_page(back: Option<(&str, &str)>) -> String {
    let back = back
        .map(|(client, url)| {
            format!(
                "<p><a id=\"back\" href=\"{}\">Back to {}</a></p>",
                escape(url),
                escape(client)
            )
        })
        .unwrap_or_default();
    page(
        "Signed out",
        &format!("<h1>Signed out</h1><p>You are signed out of the development provider.</p>{back}"),
    )
}

/// The page asking for a device user code.
pub(crate) fn device_page(action: &str, user_code: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Device sign-in",
        &format!(
            "<h1>Connect a device</h1>{error}<form method=\"post\" action=\"{action}\">\
             <label>Code <input name=\"user_code\" value=\"{code}\"></label>\
             <label>Username <input name=\"username\" autocomplete=\"username\"></label>\
             <label>Password <input name=\"password\" type=\"password\"></label>\
             <button type=\"submit\">Approve</button></form>",
            action = escape(action),
            code = escape(user_code),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>"a"&'b'</script>"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#x27;b&#x27;&lt;/script&gt;"
        );
    }

    #[test]
    fn login_page_escapes_every_value() {
        let html = login_page(
            "id\"",
            "/login",
            "<c>",
            "<script>x</script>",
            Some("<i>note</i>"),
            Some("<b>"),
        );
        assert!(!html.contains("<script>x"));
        assert!(!html.contains("<i>"));
        assert!(html.contains("<p id=\"note\">&lt;i&gt;note&lt;/i&gt;</p>"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("&lt;c&gt;"));
        assert!(html.contains("value=\"id&quot;\""));
        assert!(html.contains(NOT_FOR_PRODUCTION));
    }

    #[test]
    fn the_signed_out_page_links_back_to_the_client() {
        let html = signed_out_page(Some(("demo", "http://127.0.0.1:4180/?a=1&b=\"")));
        assert!(html.contains(
            "<a id=\"back\" href=\"http://127.0.0.1:4180/?a=1&amp;b=&quot;\">Back to demo</a>"
        ));
        assert!(!signed_out_page(None).contains("id=\"back\""));
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_markup(text in ".*") {
            let escaped = escape(&text);
            prop_assert!(!escaped.contains('<'));
            prop_assert!(!escaped.contains('>'));
            prop_assert!(!escaped.contains('"'));
            prop_assert!(!escaped.contains('\''));
        }
    }
}
