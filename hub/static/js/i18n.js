// Chinese (default) and English labels; the choice is remembered in localStorage.

const DICT = {
  zh: {
    "app.commander": "指挥席", "app.department": "部门终端", "app.evaluator": "评估席",
    "lang.switch": "English",
    "token.title": "请输入访问令牌", "token.paste": "粘贴令牌", "token.open": "进入",
    "token.bad": "令牌无效，无法进入", "token.missing": "缺少令牌：请使用带令牌的链接，或在下方粘贴令牌。",
    "token.wrongRole": "此令牌的角色是“{role}”，不能打开本页面。",
    "conn.connecting": "正在连接…", "conn.online": "已连接", "conn.offline": "连接中断，正在重连…",
    "conn.reconnecting": "正在重连…", "conn.auth": "令牌失效",
    "conn.offlineLong": "与指挥中心的连接中断，正在重连。期间的操作会在恢复后自动发送，不会丢失。",
    "op.none": "无进行中的行动", "op.drill": "演练", "op.incident": "事件", "op.paused": "已暂停",
    "op.start": "开始演练", "op.pause": "暂停", "op.resume": "继续", "op.stop": "结束",
    "op.title": "演练名称", "op.level": "响应级别", "op.confirmStop": "确定结束当前行动？",
    "op.defaultTitle": "联动实战演练", "op.elapsed": "已进行", "op.noScenario": "（无脚本）",
    "inject.next": "下一条情景注入", "inject.due": "情景注入到时", "inject.release": "发布注入",
    "inject.released": "已发布注入",
    "wall.title": "视频墙", "wall.noVideo": "无画面", "wall.offline": "离线", "wall.online": "在线",
    "wall.frozen": "画面冻结", "wall.black": "黑屏", "wall.lost": "视频中断", "wall.missing": "无视频",
    "wall.pushAll": "推送给全部部门", "wall.pushGroup": "推送给编组", "wall.unpush": "收回推送",
    "wall.mute": "静音", "wall.unmute": "取消静音", "wall.talk": "单独通话", "wall.close": "关闭",
    "wall.pushedTo": "已推送至", "wall.all": "全部", "flag.pushed": "推送中", "flag.muted": "静音",
    "talk.label": "通话", "talk.all": "全体", "mic.on": "麦克风开", "mic.off": "麦克风关",
    "compose.title": "下达指令", "compose.targets": "对象", "compose.all": "全部部门",
    "compose.groups": "编组", "compose.text": "指令内容", "compose.priority": "优先级",
    "compose.requires": "需回复", "compose.deadlines": "时限（秒）", "compose.level": "按响应级别",
    "compose.send": "发送 (Enter)", "compose.sent": "已下达 {id}", "compose.noTarget": "请选择对象",
    "compose.noText": "请输入指令内容", "compose.placeholder": "输入指令，回车发送，Shift+回车换行",
    "prio.routine": "一般", "prio.urgent": "紧急", "prio.flash": "特急",
    "stage.receipt": "签收", "stage.on_scene": "到场", "stage.completed": "完成",
    "state.issued": "已下达", "state.delivered": "已送达", "state.acknowledged": "已签收",
    "state.on_scene": "已到场", "state.completed": "已完成", "state.declined": "无法执行",
    "state.cancelled": "已取消",
    "board.title": "指令状态", "board.empty": "暂无进行中的指令", "board.escalate": "催办",
    "board.cancel": "撤销", "board.overdue": "超时", "board.latency": "用时",
    "board.issuedAt": "下达", "board.deadline": "时限",
    "journal.title": "事件日志", "journal.filter": "筛选…", "journal.all": "全部",
    "journal.commands": "指令", "journal.responses": "回复", "journal.presence": "在线",
    "journal.video": "视频", "journal.routing": "调度", "journal.drill": "演练", "journal.eval": "评估",
    "inbox.title": "指令收件箱", "inbox.empty": "暂无指令", "inbox.new": "新指令",
    "resp.receipt": "签收", "resp.on_scene": "到场", "resp.completed": "完成",
    "resp.declined": "无法执行", "resp.reason": "请填写原因", "resp.confirm": "确认",
    "resp.cancel": "取消", "inbox.from": "指挥中心", "inbox.overdue": "已超时",
    "inbox.escalated": "催办", "inbox.due": "剩余", "inbox.done": "已结束",
    "dept.checkin": "报到", "dept.checkedIn": "已报到", "dept.myCamera": "本地画面",
    "dept.commander": "指挥中心", "dept.pushed": "推送画面", "dept.noCamera": "无法打开摄像头",
    "report.title": "现场报告", "report.text": "报告内容", "report.command": "关联指令",
    "report.none": "（无）", "report.snapshot": "附带现场截图", "report.send": "发送报告",
    "report.sent": "报告已发送", "report.snapshotSaved": "截图已保存",
    "eval.observe": "评估记录", "eval.criterion": "评分项", "eval.rating": "评级",
    "eval.note": "备注", "eval.dept": "部门", "eval.anyDept": "（全体）", "eval.record": "记录",
    "eval.recorded": "已记录", "eval.checklist": "检查表", "eval.pdf": "生成评分报告 PDF",
    "eval.pdfWorking": "正在生成…", "eval.pdfReady": "评分报告已生成", "eval.pdfFailed": "生成失败",
    "eval.mine": "本席记录",
    "rating.P": "P 顺利完成", "rating.S": "S 有些困难", "rating.M": "M 困难较大", "rating.U": "U 未能完成",
    "err.generic": "操作失败",
    "sec": "秒",
  },
  en: {
    "app.commander": "Commander", "app.department": "Department terminal", "app.evaluator": "Evaluator",
    "lang.switch": "中文",
    "token.title": "Enter your access token", "token.paste": "Paste token", "token.open": "Open",
    "token.bad": "Invalid token: access refused", "token.missing": "No token: open your link with its token, or paste it below.",
    "token.wrongRole": "This token's role is \"{role}\"; it cannot open this page.",
    "conn.connecting": "Connecting…", "conn.online": "Connected", "conn.offline": "Connection lost, reconnecting…",
    "conn.reconnecting": "Reconnecting…", "conn.auth": "Token no longer valid",
    "conn.offlineLong": "Connection to the command center lost; reconnecting. What you do meanwhile is sent when it is back, nothing is lost.",
    "op.none": "No operation running", "op.drill": "Drill", "op.incident": "Incident", "op.paused": "Paused",
    "op.start": "Start drill", "op.pause": "Pause", "op.resume": "Resume", "op.stop": "Stop",
    "op.title": "Drill title", "op.level": "Response level", "op.confirmStop": "End the current operation?",
    "op.defaultTitle": "Joint live drill", "op.elapsed": "Elapsed", "op.noScenario": "(no scenario)",
    "inject.next": "Next inject", "inject.due": "Inject due", "inject.release": "Release inject",
    "inject.released": "Inject released",
    "wall.title": "Video wall", "wall.noVideo": "No video", "wall.offline": "Offline", "wall.online": "Online",
    "wall.frozen": "Frozen", "wall.black": "Black picture", "wall.lost": "Video lost", "wall.missing": "No video",
    "wall.pushAll": "Push to all departments", "wall.pushGroup": "Push to group", "wall.unpush": "Take back",
    "wall.mute": "Mute", "wall.unmute": "Unmute", "wall.talk": "Talk to this one", "wall.close": "Close",
    "wall.pushedTo": "Pushed to", "wall.all": "all", "flag.pushed": "pushed", "flag.muted": "muted",
    "talk.label": "Talk", "talk.all": "Everyone", "mic.on": "Mic on", "mic.off": "Mic off",
    "compose.title": "Issue a command", "compose.targets": "Targets", "compose.all": "All departments",
    "compose.groups": "Groups", "compose.text": "Command", "compose.priority": "Priority",
    "compose.requires": "Responses", "compose.deadlines": "Deadlines (s)", "compose.level": "By level",
    "compose.send": "Send (Enter)", "compose.sent": "Issued {id}", "compose.noTarget": "Pick targets",
    "compose.noText": "Type the command", "compose.placeholder": "Type the command; Enter sends, Shift+Enter new line",
    "prio.routine": "Routine", "prio.urgent": "Urgent", "prio.flash": "Flash",
    "stage.receipt": "Receipt", "stage.on_scene": "On scene", "stage.completed": "Completed",
    "state.issued": "Issued", "state.delivered": "Delivered", "state.acknowledged": "Received",
    "state.on_scene": "On scene", "state.completed": "Completed", "state.declined": "Cannot comply",
    "state.cancelled": "Cancelled",
    "board.title": "Command status", "board.empty": "No open commands", "board.escalate": "Chase (催办)",
    "board.cancel": "Cancel", "board.overdue": "Overdue", "board.latency": "took",
    "board.issuedAt": "Issued", "board.deadline": "Deadline",
    "journal.title": "Journal", "journal.filter": "Filter…", "journal.all": "All",
    "journal.commands": "Commands", "journal.responses": "Responses", "journal.presence": "Presence",
    "journal.video": "Video", "journal.routing": "Routing", "journal.drill": "Drill", "journal.eval": "Evaluation",
    "inbox.title": "Command inbox", "inbox.empty": "No commands", "inbox.new": "New command",
    "resp.receipt": "Receipt", "resp.on_scene": "On scene", "resp.completed": "Completed",
    "resp.declined": "Cannot comply", "resp.reason": "Give the reason", "resp.confirm": "Confirm",
    "resp.cancel": "Cancel", "inbox.from": "Command center", "inbox.overdue": "Overdue",
    "inbox.escalated": "Chased", "inbox.due": "left", "inbox.done": "Closed",
    "dept.checkin": "Check in", "dept.checkedIn": "Checked in", "dept.myCamera": "My camera",
    "dept.commander": "Command center", "dept.pushed": "Pushed feed", "dept.noCamera": "Camera unavailable",
    "report.title": "Field report", "report.text": "Report", "report.command": "For command",
    "report.none": "(none)", "report.snapshot": "Attach a camera snapshot", "report.send": "Send report",
    "report.sent": "Report sent", "report.snapshotSaved": "Snapshot saved",
    "eval.observe": "Observation", "eval.criterion": "Criterion", "eval.rating": "Rating",
    "eval.note": "Note", "eval.dept": "Department", "eval.anyDept": "(all)", "eval.record": "Record",
    "eval.recorded": "Recorded", "eval.checklist": "Checklist", "eval.pdf": "Produce the scorecard PDF",
    "eval.pdfWorking": "Producing…", "eval.pdfReady": "Scorecard ready", "eval.pdfFailed": "Failed",
    "eval.mine": "My entries",
    "rating.P": "P performed", "rating.S": "S some challenges", "rating.M": "M major challenges", "rating.U": "U unable",
    "err.generic": "Failed",
    "sec": "s",
  },
};

const KEY = "commandhub.lang";
const listeners = [];
let lang = (() => {
  try { return localStorage.getItem(KEY) === "en" ? "en" : "zh"; } catch (_) { return "zh"; }
})();

export function getLang() { return lang; }

export function t(key, vars) {
  let s = DICT[lang][key] ?? DICT.zh[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

export function setLang(l) {
  lang = l === "en" ? "en" : "zh";
  try { localStorage.setItem(KEY, lang); } catch (_) { /* private mode */ }
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  applyI18n(document);
  for (const cb of listeners) cb(lang);
}

export function onLangChange(cb) { listeners.push(cb); }

export function applyI18n(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

// A department (roster entry) or the center, by the current language; Chinese names as written.
export function nameOf(d) {
  if (!d) return "";
  return lang === "en" ? (d.name_en || d.id) : (d.name_zh || d.id);
}

export function initLangButton(button) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  applyI18n(document);
  button.addEventListener("click", () => setLang(lang === "zh" ? "en" : "zh"));
}
