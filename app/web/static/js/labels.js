// How the domain's codes read on screen (DESIGN.md glossary).

export const ROLE = {
  parent: "家长",
  operator: "经营者",
  inspector: "监管人员",
  technician: "技术人员",
  admin: "管理员",
};

export const CENTRE_STATUS = {
  invited: "已邀请",
  installing: "安装中",
  commissioning: "调试中",
  live: "已上线",
  suspended: "已暂停",
};

export const CAMERA_STATUS = {
  unknown: "未知",
  online: "在线",
  offline: "离线",
  stalled: "画面中断",
  tampered: "画面异常",
};

// Badge tone per camera status.
export const CAMERA_TONE = {
  unknown: "plain",
  online: "ok",
  offline: "danger",
  stalled: "warn",
  tampered: "danger",
};

export const AREA = {
  prep: "备餐间",
  storage: "储存间",
  cooking: "操作间",
  washing: "清洗间",
  other: "其他区域",
};

export const NOTICE_STATUS = {
  draft: "草稿",
  issued: "已下发",
  acknowledged: "已签收",
  responded: "已回复待复查",
  returned: "已退回重新整改",
  verified: "复查通过",
  overdue: "已逾期",
  escalated: "逾期已上报",
  withdrawn: "已撤回",
};

export const NOTICE_TONE = {
  draft: "plain",
  issued: "warn",
  acknowledged: "warn",
  responded: "info",
  returned: "danger",
  verified: "ok",
  overdue: "danger",
  escalated: "danger",
  withdrawn: "plain",
};

export const OPEN_NOTICE = new Set([
  "issued",
  "acknowledged",
  "responded",
  "returned",
  "overdue",
  "escalated",
]);

// States in which the operator can still answer.
export const ANSWERABLE = new Set(["issued", "acknowledged", "returned", "overdue", "escalated"]);

export const FINDING_CATEGORY = {
  hygiene: "环境卫生",
  storage: "食品贮存",
  pests: "虫害防治",
  staff: "人员着装与操作",
  equipment: "设施设备",
  camera: "摄像头与覆盖",
  other: "其他",
};

export const SEVERITY = {
  I: "Ⅰ级（立即整改）",
  II: "Ⅱ级（限期整改）",
  III: "Ⅲ级（一般提醒）",
};

export const REVIEW_MODE = {
  live_video: "视频复查",
  on_site: "现场复查",
};

export const FOLLOW_UP_KIND = {
  phone: "电话督促",
  on_site: "现场督办",
  message: "消息提醒",
};

export const PATROL_MODE = {
  remote: "远程巡查",
  on_site: "现场巡查",
};

export const CONCERN_STATUS = {
  submitted: "已提交待受理",
  accepted: "已受理处理中",
  resolved: "已办结",
  dismissed: "不予受理",
};

export const CONCERN_TONE = {
  submitted: "warn",
  accepted: "info",
  resolved: "ok",
  dismissed: "plain",
};
