// The namespace primitives live in lab/netns.ts (the lab is compiled into dist/ and uses them too).
export * from '../../lab/netns.js';
