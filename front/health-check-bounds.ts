// Bounds of health-check durations, in seconds: the front config's defaults and a table back's
// own healthCheck use the same ones (an interval of 2000 is refused: it would be 33 minutes).
export const HEALTH_INTERVAL_MIN = 0.1;
export const HEALTH_INTERVAL_MAX = 300;
export const HEALTH_TIMEOUT_MIN = 0.1;
export const HEALTH_TIMEOUT_MAX = 60;
