// Chinese (default) and English labels; the choice is remembered in localStorage.
// Every label a page shows comes from here (tests/consoles check that English mode shows no
// Chinese outside department names and what operators typed).

const DICT = {
  zh: {
    "app.commander": "指挥席", "app.department": "部门终端", "app.evaluator": "评估席", "app.observer": "观察席",
    "title.commander": "CommandHub · 指挥席", "title.department": "CommandHub · 部门终端", "title.evaluator": "CommandHub · 评估席",
    "inbox.flash": "【{what}】{id}",
    "lang.switch": "English", "help.button": "快捷键 ?",
    "token.title": "请输入访问令牌", "token.paste": "粘贴令牌", "token.open": "进入",
    "token.bad": "令牌无效，无法进入", "token.missing": "缺少令牌：请使用带令牌的链接，或在下方粘贴令牌。",
    "token.wrongRole": "此令牌的角色是“{role}”，不能打开本页面。",
    "conn.label": "指令通道",
    "conn.connecting": "正在连接…", "conn.online": "已连接", "conn.offline": "连接中断，正在重连…",
    "conn.reconnecting": "正在重连…", "conn.auth": "令牌失效",
    "conn.offlineLong": "与指挥中心的连接中断，正在重连。期间的操作会在恢复后自动发送，不会丢失。",
    "media.label": "视频通道",
    "media.idle": "未启动", "media.negotiating": "正在协商…", "media.connecting": "正在连通…",
    "media.connected": "已连通", "media.failed": "失败", "media.retryIn": "{s} 秒后第 {n} 次重试",
    "media.retrying": "正在重试（第 {n} 次）",
    "media.cause.ice_timeout": "ICE 超时：媒体连接未能建立",
    "media.cause.ice_failed": "ICE 失败：找不到可用的网络路径",
    "media.cause.dtls_failed": "DTLS 握手失败：加密连接未建立",
    "media.cause.ice_disconnected": "媒体连接中断",
    "media.cause.no_ice_candidates": "指挥中心没有可用的网络地址（管理员：用 --ice-host 指定）",
    "media.cause.no_local_candidates": "本机没有收集到网络地址",
    "media.cause.no_common_codec": "没有共同支持的视频编码",
    "media.cause.offer_timeout": "信令超时：中心未应答",
    "media.cause.bad_sdp": "媒体描述无效",
    "media.cause.other": "媒体连接错误",
    "media.side.hub": "中心报告", "media.side.browser": "本机检测",
    "op.none": "无进行中的行动", "op.drill": "演练", "op.incident": "事件", "op.paused": "已暂停",
    "op.start": "开始演练", "op.pause": "暂停", "op.resume": "继续", "op.stop": "结束",
    "op.title": "演练名称", "op.level": "响应级别", "op.confirmStop": "确定结束当前行动？",
    "op.defaultTitle": "联动实战演练", "op.elapsed": "已进行", "op.noScenario": "（无脚本）",
    "inject.next": "下一条情景注入", "inject.due": "情景注入到时", "inject.release": "发布注入",
    "inject.released": "已发布注入",
    "wall.title": "视频墙", "wall.noVideo": "无画面", "wall.offline": "离线", "wall.online": "在线",
    "wall.frozen": "画面冻结", "wall.black": "黑屏", "wall.lost": "视频中断", "wall.missing": "无视频",
    "wall.ok": "正常", "wall.unknown": "—", "wall.none": "未收到视频",
    "wall.hubVerdict": "中心", "wall.localVerdict": "本机",
    "wall.verdictHelp": "中心：指挥中心服务器对这路视频的判定。本机：这台浏览器自己解码到的画面。",
    "wall.push": "推送", "wall.pushTo": "推送给", "wall.unpush": "收回推送",
    "wall.mute": "静音", "wall.unmute": "取消静音", "wall.talk": "单独通话", "wall.close": "关闭",
    "wall.pushedTo": "已推送至", "wall.all": "全部部门", "wall.allOthers": "全部其他部门",
    "flag.pushed": "推送中", "flag.muted": "静音",
    "talk.label": "通话", "talk.all": "全体", "mic.on": "麦克风开", "mic.off": "麦克风关",
    "compose.title": "下达指令", "compose.targets": "对象", "compose.all": "全部部门",
    "compose.groups": "编组", "compose.depts": "部门", "compose.text": "指令内容", "compose.priority": "优先级",
    "compose.requires": "需回复", "compose.deadlines": "时限（秒）", "compose.level": "按响应级别",
    "compose.send": "发送 (Enter)", "compose.sent": "已下达 {id} → {to}", "compose.noTarget": "请选择对象",
    "compose.noText": "请输入指令内容", "compose.placeholder": "输入指令，回车发送，Shift+回车换行",
    "compose.find": "输入部门或编组名称，回车加入（/）",
    "compose.selected": "将发送至 {n} 个部门：", "compose.none": "未选择对象",
    "compose.clear": "清除", "compose.noMatch": "无匹配",
    "prio.routine": "一般", "prio.urgent": "紧急", "prio.flash": "特急",
    "stage.receipt": "签收", "stage.on_scene": "到场", "stage.completed": "完成",
    "state.issued": "未送达", "state.delivered": "已送达", "state.acknowledged": "已签收",
    "state.on_scene": "已到场", "state.completed": "已完成", "state.declined": "无法执行",
    "state.cancelled": "已取消", "state.offline": "离线未送达", "state.overdue": "超时",
    "legend.offline": "离线未送达",
    "state.help.issued": "已发出，部门终端尚未确认收到",
    "state.help.offline": "部门离线，指令尚未送达；上线后自动补发",
    "state.help.delivered": "部门终端已收到，等待签收",
    "board.title": "指令状态", "board.empty": "暂无指令", "board.escalate": "催办",
    "board.escalateNote": "催办", "board.cancel": "撤销", "board.overdue": "超时",
    "board.issuedAt": "下达", "board.deadline": "时限", "board.reason": "原因",
    "board.offlineNow": "当前离线", "board.reports": "现场报告", "board.summary.reached": "已送达 {n}/{total}",
    "board.summary.notReached": "未送达 {n}（离线 {off}）", "board.expand": "展开", "board.collapse": "收起",
    "board.closed": "已结束",
    "reports.title": "现场报告", "reports.empty": "暂无现场报告", "reports.snapshot": "现场截图",
    "reports.forCommand": "关联",
    "journal.title": "事件日志", "journal.filter": "筛选…", "journal.all": "全部",
    "journal.commands": "指令", "journal.responses": "回复", "journal.presence": "在线",
    "journal.video": "视频", "journal.routing": "调度", "journal.drill": "演练", "journal.eval": "评估",
    "journal.noise": "技术事件", "journal.noiseHidden": "已隐藏 {n} 条技术事件",
    "inbox.title": "指令收件箱", "inbox.empty": "暂无指令", "inbox.new": "新指令",
    "resp.receipt": "签收", "resp.on_scene": "到场", "resp.completed": "完成",
    "resp.declined": "无法执行", "resp.reasonPrompt": "请填写原因", "resp.confirm": "确认",
    "resp.cancel": "取消", "inbox.from": "指挥中心", "inbox.overdue": "已超时",
    "inbox.escalated": "催办", "inbox.due": "剩余", "inbox.done": "已结束",
    "dept.checkin": "报到", "dept.checkedIn": "已报到", "dept.myCamera": "本地画面",
    "dept.commander": "指挥中心", "dept.pushed": "推送画面", "dept.noCamera": "无法打开摄像头",
    "report.title": "现场报告", "report.text": "报告内容", "report.command": "关联指令",
    "report.none": "（无）", "report.snapshot": "附带现场截图", "report.send": "发送报告",
    "report.sent": "报告已发送", "report.snapshotSaved": "截图已保存",
    "eval.observe": "评估记录", "eval.criterion": "评分项", "eval.rating": "评级",
    "eval.note": "备注", "eval.dept": "部门", "eval.anyDept": "（全体）", "eval.record": "记录",
    "eval.recorded": "已记录", "eval.checklist": "检查表", "eval.pdf": "生成并下载评分报告 PDF",
    "eval.pdfWorking": "正在生成…", "eval.pdfReady": "评分报告已下载", "eval.pdfFailed": "生成失败",
    "eval.pdfAgain": "再次下载", "eval.mine": "本席记录",
    "rating.P": "P 顺利完成", "rating.S": "S 有些困难", "rating.M": "M 困难较大", "rating.U": "U 未能完成",
    "err.generic": "操作失败",
    "help.title": "键盘操作", "help.close": "关闭 (Esc)",
    "help.k.find": "选择对象：输入部门或编组名称（中文、英文或编号），回车加入，↑↓ 选择",
    "help.k.back": "在对象框中按退格：去掉最后一个对象",
    "help.k.tab": "Tab：从对象框到指令内容",
    "help.k.send": "在指令内容中按回车：发送（Shift+回车换行）；发送后对象清空",
    "help.k.all": "在对象框输入 all 或 全部：全部部门",
    "help.k.slash": "Esc：离开指令内容；/：回到对象框",
    "help.k.help": "?：显示本帮助；Esc：关闭弹窗",
    "help.k.tiles": "视频墙格子可用 Tab 聚焦，回车放大",
    "sec": "秒",
  },
  en: {
    "app.commander": "Commander", "app.department": "Department terminal", "app.evaluator": "Evaluator", "app.observer": "Observer",
    "title.commander": "CommandHub · Commander", "title.department": "CommandHub · Department terminal", "title.evaluator": "CommandHub · Evaluator",
    "inbox.flash": "[{what}] {id}",
    "lang.switch": "中文", "help.button": "Keys ?",
    "token.title": "Enter your access token", "token.paste": "Paste token", "token.open": "Open",
    "token.bad": "Invalid token: access refused", "token.missing": "No token: open your link with its token, or paste it below.",
    "token.wrongRole": "This token's role is \"{role}\"; it cannot open this page.",
    "conn.label": "Messages",
    "conn.connecting": "Connecting…", "conn.online": "Connected", "conn.offline": "Connection lost, reconnecting…",
    "conn.reconnecting": "Reconnecting…", "conn.auth": "Token no longer valid",
    "conn.offlineLong": "Connection to the command center lost; reconnecting. What you do meanwhile is sent when it is back, nothing is lost.",
    "media.label": "Video",
    "media.idle": "not started", "media.negotiating": "negotiating…", "media.connecting": "connecting…",
    "media.connected": "connected", "media.failed": "failed", "media.retryIn": "retry {n} in {s} s",
    "media.retrying": "retrying (attempt {n})",
    "media.cause.ice_timeout": "ICE timeout: no media path was set up",
    "media.cause.ice_failed": "ICE failed: no usable network path",
    "media.cause.dtls_failed": "DTLS handshake failed: no encrypted link",
    "media.cause.ice_disconnected": "media link interrupted",
    "media.cause.no_ice_candidates": "the hub has no usable network address (admin: set --ice-host)",
    "media.cause.no_local_candidates": "this browser gathered no network address",
    "media.cause.no_common_codec": "no video codec in common",
    "media.cause.offer_timeout": "signaling timeout: the hub did not answer",
    "media.cause.bad_sdp": "invalid media description",
    "media.cause.other": "media link error",
    "media.side.hub": "reported by the hub", "media.side.browser": "seen by this browser",
    "op.none": "No operation running", "op.drill": "Drill", "op.incident": "Incident", "op.paused": "Paused",
    "op.start": "Start drill", "op.pause": "Pause", "op.resume": "Resume", "op.stop": "Stop",
    "op.title": "Drill title", "op.level": "Response level", "op.confirmStop": "End the current operation?",
    "op.defaultTitle": "Joint live drill", "op.elapsed": "Elapsed", "op.noScenario": "(no scenario)",
    "inject.next": "Next inject", "inject.due": "Inject due", "inject.release": "Release inject",
    "inject.released": "Inject released",
    "wall.title": "Video wall", "wall.noVideo": "No video", "wall.offline": "Offline", "wall.online": "Online",
    "wall.frozen": "Frozen", "wall.black": "Black picture", "wall.lost": "Video lost", "wall.missing": "No video",
    "wall.ok": "OK", "wall.unknown": "—", "wall.none": "No feed received",
    "wall.hubVerdict": "Hub", "wall.localVerdict": "Here",
    "wall.verdictHelp": "Hub: the command center server's verdict on this feed. Here: what this browser itself decodes.",
    "wall.push": "Push", "wall.pushTo": "Push to", "wall.unpush": "Take back",
    "wall.mute": "Mute", "wall.unmute": "Unmute", "wall.talk": "Talk to this one", "wall.close": "Close",
    "wall.pushedTo": "Pushed to", "wall.all": "all departments", "wall.allOthers": "all other departments",
    "flag.pushed": "pushed", "flag.muted": "muted",
    "talk.label": "Talk", "talk.all": "Everyone", "mic.on": "Mic on", "mic.off": "Mic off",
    "compose.title": "Issue a command", "compose.targets": "Targets", "compose.all": "All departments",
    "compose.groups": "Groups", "compose.depts": "Departments", "compose.text": "Command", "compose.priority": "Priority",
    "compose.requires": "Responses", "compose.deadlines": "Deadlines (s)", "compose.level": "By level",
    "compose.send": "Send (Enter)", "compose.sent": "Issued {id} → {to}", "compose.noTarget": "Pick targets",
    "compose.noText": "Type the command", "compose.placeholder": "Type the command; Enter sends, Shift+Enter new line",
    "compose.find": "Type a department or group, Enter adds it (/)",
    "compose.selected": "Goes to {n} departments: ", "compose.none": "No target selected",
    "compose.clear": "Clear", "compose.noMatch": "no match",
    "prio.routine": "Routine", "prio.urgent": "Urgent", "prio.flash": "Flash",
    "stage.receipt": "Receipt", "stage.on_scene": "On scene", "stage.completed": "Completed",
    "state.issued": "Sent", "state.delivered": "Delivered", "state.acknowledged": "Received",
    "state.on_scene": "On scene", "state.completed": "Done", "state.declined": "Cannot comply",
    "state.cancelled": "Cancelled", "state.offline": "Offline", "state.overdue": "Overdue",
    "legend.offline": "Offline: not reached",
    "state.help.issued": "sent; the department's terminal has not confirmed it yet",
    "state.help.offline": "the department is offline: not delivered; it is re-sent when it is back",
    "state.help.delivered": "on the department's terminal; waiting for the receipt",
    "board.title": "Command status", "board.empty": "No commands yet", "board.escalate": "Chase up",
    "board.escalateNote": "chased up", "board.cancel": "Cancel", "board.overdue": "Overdue",
    "board.issuedAt": "Issued", "board.deadline": "Deadline", "board.reason": "Reason",
    "board.offlineNow": "offline now", "board.reports": "Field reports", "board.summary.reached": "delivered {n}/{total}",
    "board.summary.notReached": "not reached {n} ({off} offline)", "board.expand": "Show", "board.collapse": "Hide",
    "board.closed": "closed",
    "reports.title": "Field reports", "reports.empty": "No field reports yet", "reports.snapshot": "Snapshot",
    "reports.forCommand": "for",
    "journal.title": "Journal", "journal.filter": "Filter…", "journal.all": "All",
    "journal.commands": "Commands", "journal.responses": "Responses", "journal.presence": "Presence",
    "journal.video": "Video", "journal.routing": "Routing", "journal.drill": "Drill", "journal.eval": "Evaluation",
    "journal.noise": "Technical", "journal.noiseHidden": "{n} technical events hidden",
    "inbox.title": "Command inbox", "inbox.empty": "No commands", "inbox.new": "New command",
    "resp.receipt": "Receipt", "resp.on_scene": "On scene", "resp.completed": "Completed",
    "resp.declined": "Cannot comply", "resp.reasonPrompt": "Give the reason", "resp.confirm": "Confirm",
    "resp.cancel": "Cancel", "inbox.from": "Command center", "inbox.overdue": "Overdue",
    "inbox.escalated": "Chased", "inbox.due": "left", "inbox.done": "Closed",
    "dept.checkin": "Check in", "dept.checkedIn": "Checked in", "dept.myCamera": "My camera",
    "dept.commander": "Command center", "dept.pushed": "Pushed feed", "dept.noCamera": "Camera unavailable",
    "report.title": "Field report", "report.text": "Report", "report.command": "For command",
    "report.none": "(none)", "report.snapshot": "Attach a camera snapshot", "report.send": "Send report",
    "report.sent": "Report sent", "report.snapshotSaved": "Snapshot saved",
    "eval.observe": "Observation", "eval.criterion": "Criterion", "eval.rating": "Rating",
    "eval.note": "Note", "eval.dept": "Department", "eval.anyDept": "(all)", "eval.record": "Record",
    "eval.recorded": "Recorded", "eval.checklist": "Checklist", "eval.pdf": "Produce and download the scorecard PDF",
    "eval.pdfWorking": "Producing…", "eval.pdfReady": "Scorecard downloaded", "eval.pdfFailed": "Failed",
    "eval.pdfAgain": "Download again", "eval.mine": "My entries",
    "rating.P": "P performed", "rating.S": "S some challenges", "rating.M": "M major challenges", "rating.U": "U unable",
    "err.generic": "Failed",
    "help.title": "Keyboard", "help.close": "Close (Esc)",
    "help.k.find": "Targets: type a department or group (English, Chinese or id), Enter adds it, ↑↓ to choose",
    "help.k.back": "Backspace in the target box: remove the last target",
    "help.k.tab": "Tab: from the target box to the command text",
    "help.k.send": "Enter in the command text: send (Shift+Enter: new line); the targets clear after sending",
    "help.k.all": "Type all in the target box: every department",
    "help.k.slash": "Esc leaves the command text; /: back to the target box",
    "help.k.help": "?: this help; Esc: close a dialog",
    "help.k.tiles": "Wall tiles take Tab focus; Enter enlarges one",
    "sec": "s",
  },
};

// Event kinds as operators say them (the raw kind stays in the row's tooltip).
const KINDS = {
  zh: {
    "command.issued": "下达指令", "command.delivered": "指令送达", "command.acknowledged": "签收",
    "command.on_scene": "到场", "command.completed": "完成", "command.declined": "无法执行",
    "command.overdue": "回复超时", "command.escalated": "催办", "command.cancelled": "撤销指令",
    "command.resent": "补发指令", "report.field": "现场报告", "media.snapshot": "现场截图",
    "dept.checked_in": "报到", "presence.online": "上线", "presence.offline": "离线",
    "presence.clock": "时钟校准", "video.lost": "视频中断", "video.frozen": "画面冻结",
    "video.black": "黑屏", "video.restored": "视频恢复", "video.resolution": "分辨率变化",
    "media.recording": "录像分段", "media.error": "录像错误", "media.published": "开始推流",
    "media.unpublished": "停止推流", "link.stats": "链路统计", "route.changed": "调度变更",
    "operation.started": "开始行动", "operation.ended": "结束行动", "operation.paused": "暂停",
    "operation.resumed": "继续", "operation.level_changed": "响应级别变更", "inject.released": "发布注入",
    "observation.recorded": "评估记录", "checklist.ticked": "检查表", "ingest.started": "接入摄像头",
    "ingest.connected": "摄像头已连接", "ingest.stopped": "摄像头接入停止", "token.revoked": "令牌吊销",
    "auth.rejected": "拒绝访问", "auth.rejected_suppressed": "拒绝访问（合并）",
    "hub.started": "中心启动", "hub.stopped": "中心停止",
  },
  en: {
    "command.issued": "Command issued", "command.delivered": "Delivered", "command.acknowledged": "Receipt",
    "command.on_scene": "On scene", "command.completed": "Completed", "command.declined": "Cannot comply",
    "command.overdue": "Overdue", "command.escalated": "Chased up", "command.cancelled": "Cancelled",
    "command.resent": "Re-sent", "report.field": "Field report", "media.snapshot": "Snapshot",
    "dept.checked_in": "Checked in", "presence.online": "Online", "presence.offline": "Offline",
    "presence.clock": "Clock sync", "video.lost": "Video lost", "video.frozen": "Frozen",
    "video.black": "Black picture", "video.restored": "Video back", "video.resolution": "Resolution",
    "media.recording": "Recording segment", "media.error": "Recording error", "media.published": "Feed started",
    "media.unpublished": "Feed ended", "link.stats": "Link stats", "route.changed": "Routing",
    "operation.started": "Operation started", "operation.ended": "Operation ended", "operation.paused": "Paused",
    "operation.resumed": "Resumed", "operation.level_changed": "Level changed", "inject.released": "Inject released",
    "observation.recorded": "Observation", "checklist.ticked": "Checklist", "ingest.started": "Camera ingest",
    "ingest.connected": "Camera connected", "ingest.stopped": "Camera ingest stopped", "token.revoked": "Token revoked",
    "auth.rejected": "Access refused", "auth.rejected_suppressed": "Access refused (more)",
    "hub.started": "Hub started", "hub.stopped": "Hub stopped",
  },
};

const KEY = "commandhub.lang";
const listeners = [];
let lang = (() => {
  try { return localStorage.getItem(KEY) === "en" ? "en" : "zh"; } catch (_) { return "zh"; }
})();

export function getLang() { return lang; }

// A page's own labels ({zh: {...}, en: {...}}), added to the shared dictionary.
export function addStrings(more) {
  for (const l of ["zh", "en"]) Object.assign(DICT[l], more[l]);
}

export function t(key, vars) {
  let s = DICT[lang][key] ?? DICT.zh[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

// An event kind in the operator's language (the kind itself when it has no label).
export function kindLabel(kind) {
  return KINDS[lang][kind] || kind;
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

// A department, group (roster entries with name_zh/name_en) or the center, in the current
// language; Chinese names as written.
export function nameOf(d) {
  if (!d) return "";
  return lang === "en" ? (d.name_en || d.id) : (d.name_zh || d.id);
}

// A list separator for names.
export function joinNames(names) {
  return names.join(lang === "en" ? ", " : "、");
}

export function initLangButton(button) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  applyI18n(document);
  button.addEventListener("click", () => setLang(lang === "zh" ? "en" : "zh"));
}
