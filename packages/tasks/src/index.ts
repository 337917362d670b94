export * from './arithmetic.ts';
export * from './write.ts';
