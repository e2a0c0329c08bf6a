// Types of scripts/native-sources.mjs (a plain Node script so `npm run build:prebuilds` needs no tsc).
export declare const root: string;
export declare const stampFile: string;
export declare function nativeSourcesHash(): string;
