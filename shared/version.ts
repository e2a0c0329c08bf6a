export const MSLB_VERSION = "0.1.0";
