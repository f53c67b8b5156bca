// A small typed client over the generated types (build/api.d.ts from /openapi.json): if an
// operation, a field or an enum the portal's frontends rely on drifts, this stops compiling.
import type { components, paths } from "./build/api";

type JsonBody<Op> = Op extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type JsonAnswer<Op, Status extends number> = Op extends { responses: { [S in Status]: { content: { "application/json": infer B } } } } ? B : never;

type LoginRequest = JsonBody<paths["/v1/auth/login"]["post"]>;
type LoginAnswer = JsonAnswer<paths["/v1/auth/login"]["post"], 200>;
type Me = JsonAnswer<paths["/v1/me"]["get"], 200>;
type Application = JsonAnswer<paths["/v1/applications/{id}/submit"]["post"], 200>;
type UploadSlot = JsonAnswer<paths["/v1/documents"]["post"], 201>;
type Problem = components["schemas"]["Problem"];

export const login: LoginRequest = { login: "+79165551234", password: "Xk#9vTq!mZ2p" };

export function levelOf(me: Me): "simplified" | "standard" | "confirmed" {
  return me.level;
}

export function headline(application: Application): string {
  return `${application.number ?? "черновик"}: ${application.status_title}`;
}

export function uploadUrl(slot: UploadSlot): string {
  return slot.upload.url;
}

export function explain(problem: Problem): string {
  return `${problem.status} ${problem.code}: ${problem.detail}`;
}

export function needsSecondFactor(answer: LoginAnswer): boolean {
  return answer.mfa_required;
}
