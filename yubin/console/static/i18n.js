// Labels in English and Japanese. Keys are looked up by t(); missing Japanese falls back to English.
const STRINGS = {
  en: {
    "title": "Yubin console",
    "nav.map": "Live map", "nav.messages": "Messages", "nav.queues": "Queues", "nav.faults": "Faults", "nav.send": "Send",
    "logout": "Log out",
    "login.label": "Console password or a site's admin token",
    "login.submit": "Log in",
    "login.wrong": "Wrong password or token.",
    "map.title": "The two sites and the path of a message",
    "map.latest": "Latest steps",
    "map.rate": "/min", "map.depth": "waiting",
    "map.counted": "counted in the last minute", "map.retry": "deferred, waiting to retry",
    "map.oldest": "oldest waiting:", "map.dead": "dead letters", "map.metrics": "metrics answering",
    "map.from.metrics": "Figures: the services' counters and queue gauges (/metrics), per minute over the last minute.",
    "map.from.trace": "Rate: the services' counters (/metrics); waiting: stored and not yet retrieved, as the trace tells.",
    "map.live": "live", "map.unreachable": "unreachable",
    "node.client": "client", "node.submission": "submission", "node.relay": "relay", "node.mx": "MX",
    "node.delivery": "delivery", "node.mailbox": "mailbox", "node.pop3": "POP3", "node.dns": "DNS",
    "hint.client": "The user's mail program: it sends over SMTP submission and fetches over POP3.",
    "hint.submission": "SMTP submission (port 587): logged-in users hand over their mail; 250 once it is stored.",
    "hint.relay": "The relay asks DNS for the recipient domain's MX and delivers over SMTP (port 25), retrying on 4xx.",
    "hint.mx": "The MX (SMTP, port 25): takes mail for this site's own domains from other servers.",
    "hint.delivery": "Local delivery: writes each message into the recipient's Maildir.",
    "hint.mailbox": "The Maildir: one file per message, written whole, then renamed into new/.",
    "hint.pop3": "POP3 (port 110): after USER/PASS, LIST, RETR and DELE the user's own messages.",
    "hint.dns": "DNS: the MX record of a domain names the server that takes its mail.",
    "step.1": "1 · Post the letter: your client hands it to your post office",
    "step.1.hint": "SMTP submission (port 587): the client logs in with AUTH, sends MAIL FROM, RCPT TO and DATA; 250 means the server has it.",
    "step.2": "2 · The postman finds the other post office and carries it there",
    "step.2.hint": "DNS MX + SMTP: the relay asks DNS which host takes mail for the domain after the @, then speaks SMTP (port 25) to it.",
    "step.3": "3 · Take only your own letters out of your mailbox, with your key",
    "step.3.hint": "POP3 login (port 110): USER and PASS open your own maildrop; LIST, RETR and DELE read and remove your messages.",
    "messages.search": "Search",
    "messages.placeholder": "Message-ID, queue id or address",
    "messages.none": "No messages found.",
    "col.subject": "Subject", "col.from": "From", "col.to": "To", "col.sites": "Sites", "col.last": "Last step",
    "col.site": "Site", "col.queue": "Queue id", "col.next": "Next attempt", "col.error": "Last error",
    "col.reason": "Reason", "col.actions": "Actions", "col.kind": "Kind", "col.expires": "Expires",
    "message.title": "Journey of",
    "message.after": "after previous",
    "message.dsn": "DSN",
    "message.none": "No trace events for this message.",
    "queues.deferred": "Deferred", "queues.dead": "Dead letters", "queues.empty": "Nothing here.",
    "queues.retry": "Retry now", "queues.bounce": "Bounce now", "queues.delete": "Delete",
    "confirm.retry": "Retry this message now?", "confirm.bounce": "Bounce this message now (its sender gets a DSN)?",
    "confirm.delete": "Delete this message for good?", "confirm.fault": "Remove this fault?",
    "faults.add": "Add a fault", "faults.site": "Site", "faults.kind": "Kind", "faults.share": "Share of transactions",
    "faults.reply": "Reply", "faults.stage": "Stage", "faults.delay": "Delay (s)", "faults.domain": "Domain",
    "faults.expires": "Expires in (s)", "faults.submit": "Add", "faults.active": "Active faults",
    "faults.remove": "Remove", "faults.none": "No faults.",
    "kind.smtp-reply": "MX answers an SMTP error", "kind.drop": "MX drops the connection",
    "kind.delay": "MX delays its replies", "kind.dns-servfail": "DNS answers SERVFAIL",
    "send.text": "Text", "send.submit": "Send", "send.sent": "Sent:",
    "cancel": "Cancel", "ok": "OK",
    "error.session": "Your session ended: log in again.",
  },
  ja: {
    "title": "郵便コンソール",
    "nav.map": "ライブマップ", "nav.messages": "メッセージ", "nav.queues": "キュー", "nav.faults": "障害注入", "nav.send": "送信",
    "logout": "ログアウト",
    "login.label": "コンソールのパスワード、またはサイトの管理トークン",
    "login.submit": "ログイン",
    "login.wrong": "パスワードまたはトークンが違います。",
    "map.title": "二つのサイトとメッセージの経路",
    "map.latest": "最新の段階",
    "map.rate": "件/分", "map.depth": "待ち",
    "map.counted": "件（直近1分）", "map.retry": "件 再試行待ち",
    "map.oldest": "最古の待ち:", "map.dead": "件 デッドレター", "map.metrics": "メトリクス応答",
    "map.from.metrics": "数値: 各サービスのカウンターとキューのゲージ（/metrics）、直近1分の毎分の件数。",
    "map.from.trace": "件数: 各サービスのカウンター（/metrics）。待ち: 保存済みで未取得のもの（トレースから）。",
    "map.live": "接続中", "map.unreachable": "接続できません",
    "node.client": "メールソフト", "node.submission": "サブミッション", "node.relay": "リレー", "node.mx": "MX",
    "node.delivery": "配送", "node.mailbox": "郵便受け", "node.pop3": "POP3", "node.dns": "DNS",
    "hint.client": "利用者のメールソフト: SMTPサブミッションで送り、POP3で受け取ります。",
    "hint.submission": "SMTPサブミッション（587番）: ログインした利用者がメールを渡し、保存されると250が返ります。",
    "hint.relay": "リレー: DNSで宛先ドメインのMXを調べ、SMTP（25番）で届けます。4xxなら後で再試行します。",
    "hint.mx": "MX（SMTP、25番）: 他のサーバーからこのサイトのドメイン宛てのメールを受け取ります。",
    "hint.delivery": "ローカル配送: 各メッセージを受信者のMaildirに書き込みます。",
    "hint.mailbox": "Maildir: 1通1ファイル。書き終えてから new/ に移します。",
    "hint.pop3": "POP3（110番）: USER/PASSの後、自分のメッセージをLIST、RETR、DELEします。",
    "hint.dns": "DNS: ドメインのMXレコードがメールを受け取るサーバーを示します。",
    "step.1": "1 · 手紙をポストに投函: メールソフトが自分の郵便局に手渡す",
    "step.1.hint": "SMTPサブミッション（587番）: AUTHでログインし、MAIL FROM、RCPT TO、DATAを送ります。250はサーバーが受け取った印です。",
    "step.2": "2 · 配達員が相手の郵便局を探して運ぶ",
    "step.2.hint": "DNS MX + SMTP: リレーが@の後ろのドメインのメールを受け取るホストをDNSに尋ね、そのホストとSMTP（25番）で話します。",
    "step.3": "3 · 自分の鍵で、自分の郵便受けから自分の手紙だけを取り出す",
    "step.3.hint": "POP3ログイン（110番）: USERとPASSで自分のメールボックスを開き、LIST、RETR、DELEで読んで消します。",
    "messages.search": "検索",
    "messages.placeholder": "Message-ID、キューID、またはアドレス",
    "messages.none": "メッセージが見つかりません。",
    "col.subject": "件名", "col.from": "差出人", "col.to": "宛先", "col.sites": "サイト", "col.last": "最後の段階",
    "col.site": "サイト", "col.queue": "キューID", "col.next": "次の試行", "col.error": "最後のエラー",
    "col.reason": "理由", "col.actions": "操作", "col.kind": "種類", "col.expires": "期限",
    "message.title": "経路:",
    "message.after": "前の段階から",
    "message.dsn": "配送状態通知",
    "message.none": "このメッセージのトレースはありません。",
    "queues.deferred": "保留中", "queues.dead": "デッドレター", "queues.empty": "ありません。",
    "queues.retry": "今すぐ再送", "queues.bounce": "今すぐ返送", "queues.delete": "削除",
    "confirm.retry": "このメッセージを今すぐ再送しますか？", "confirm.bounce": "このメッセージを今すぐ返送しますか（差出人に通知が届きます）？",
    "confirm.delete": "このメッセージを完全に削除しますか？", "confirm.fault": "この障害を解除しますか？",
    "faults.add": "障害を追加", "faults.site": "サイト", "faults.kind": "種類", "faults.share": "対象の割合",
    "faults.reply": "応答", "faults.stage": "段階", "faults.delay": "遅延（秒）", "faults.domain": "ドメイン",
    "faults.expires": "有効期間（秒）", "faults.submit": "追加", "faults.active": "有効な障害",
    "faults.remove": "解除", "faults.none": "障害はありません。",
    "kind.smtp-reply": "MXがSMTPエラーを返す", "kind.drop": "MXが接続を切る",
    "kind.delay": "MXが応答を遅らせる", "kind.dns-servfail": "DNSがSERVFAILを返す",
    "send.text": "本文", "send.submit": "送信", "send.sent": "送信しました:",
    "cancel": "キャンセル", "ok": "OK",
    "error.session": "セッションが終了しました。もう一度ログインしてください。",
  },
};

let lang = localStorage.getItem("yubin-console-lang") === "ja" ? "ja" : "en";

export function t(key) {
  return STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
}

export function currentLang() {
  return lang;
}

export function setLang(next) {
  lang = next === "ja" ? "ja" : "en";
  localStorage.setItem("yubin-console-lang", lang);
  document.documentElement.lang = lang;
}

// Fills every element marked data-i18n (its text) or data-i18n-placeholder, as text only.
export function translate(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}
