export { OpenAIClient, OpenAIError, type CompleteOptions, type OpenAIClientOptions, type RemoteCompletion } from './client.ts';
export { PolicyServer, type ServerOptions } from './server.ts';
