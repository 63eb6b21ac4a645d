export type * from './runtime/driver.js';
export { instancePrefix } from './host/instance.js';
export { runServer, main, buildBaseImage, type RunningServer, type RunServerOptions } from './main.js';
export { loadConfig, parseServerFlags, CONFIG_SETTINGS, ConfigError, type ServerConfig, type ConfigOverrides } from './config.js';
export { buildApp, SERVER_VERSION, type AppDeps } from './app.js';
