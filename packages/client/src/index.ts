export {
  HeraldClient,
  createHeraldClient,
  type ConnectionState,
  type HeraldClientOptions,
  type RetainedSubscription,
} from './client.js';
export {
  HeraldClientError,
  errorCodeNames,
  fixFor,
  refusalOf,
  refusalLine,
  type HeraldClientErrorInit,
  type HeraldOperation,
} from './refusal.js';
export {
  resolveEndpoint,
  probeUrlOf,
  envHeraldUrl,
  EndpointError,
  type ResolvedEndpoint,
  type EndpointSource,
  type ResolveEndpointInput,
} from './endpoint.js';
export { probeEndpoint, type ProbeResult, type ProbeOptions } from './probe.js';
export {
  diagnoseTransportFailure,
  diagnoseServerClose,
  diagnoseConnectError,
  diagnoseExpiredAgain,
  diagnoseTokenRoute,
  nextRewriteAdvice,
  type Diagnosis,
  type DiagnosisCause,
  type DiagnosisContext,
  type TransportFailure,
} from './diagnose.js';
export {
  Centrifuge,
  UnauthorizedError,
  type Subscription,
  type PublicationContext,
  type PresenceResult,
  type HistoryResult,
  type HistoryOptions,
} from 'centrifuge';
