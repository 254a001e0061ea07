export { HeraldClient, createHeraldClient, type ConnectionState, type HeraldClientOptions } from './client.js';
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
export { Centrifuge, UnauthorizedError, type Subscription, type PublicationContext } from 'centrifuge';
