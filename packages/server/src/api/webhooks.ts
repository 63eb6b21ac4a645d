import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { WEBHOOK_EVENTS, type WebhookDeliveryRecord } from '../storage/metadata/webhooks.js';
import type { EndpointView, WebhooksService } from '../webhooks/service.js';
import { userOf } from './auth.js';
import { errorResponses } from './schemas.js';

const url = z.string().min(1).max(2048).describe('http(s) URL the events are POSTed to');
const events = z.array(z.enum(WEBHOOK_EVENTS)).max(WEBHOOK_EVENTS.length).describe(`Events to send (default all): ${WEBHOOK_EVENTS.join(', ')}`);

const EndpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.string()),
    status: z.enum(['active', 'disabled']),
    disabled_reason: z.string().nullable().describe('Why the endpoint is disabled (repeated failures, or its owner)'),
    consecutive_failures: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'WebhookEndpoint' });

const DeliverySchema = z
  .object({
    id: z.string().describe('The webhook-id header; the same on every attempt'),
    endpoint_id: z.string().nullable(),
    job_id: z.string().nullable(),
    url: z.string(),
    event_type: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_attempt_at: z.string().nullable(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    last_response: z.string().nullable().describe("The receiver's answer, at most 4 KiB"),
    delivered_at: z.string().nullable(),
    created_at: z.string(),
    payload: z.unknown().describe('The JSON body sent'),
  })
  .meta({ id: 'WebhookDelivery' });

const Params = z.object({ id: z.string().min(1) });

function presentDelivery(d: WebhookDeliveryRecord): z.infer<typeof DeliverySchema> {
  const { user_id: _u, payload, ...rest } = d;
  return { ...rest, payload: JSON.parse(payload) };
}

function presentEndpoint(e: EndpointView): z.infer<typeof EndpointSchema> {
  return e;
}

/** Webhook endpoints, their delivery log, redelivery, test events and the job signing key (ours). */
export const webhookRoutes: FastifyPluginAsyncZod<{ webhooks: WebhooksService }> = async (app, { webhooks }) => {
  app.post(
    '/api/v1/webhooks',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Add a webhook endpoint; the answer is the only time its secret is shown',
        body: z.object({ url, events: events.nullish(), description: z.string().max(500).nullish() }).meta({ id: 'CreateWebhook' }),
        response: { 201: EndpointSchema.extend({ secret: z.string().describe('whsec_... signing secret (Standard Webhooks); shown once') }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { secret, user_id: _u, ...view } = await webhooks.createEndpoint(userOf(request), request.body);
      return reply.code(201).send({ ...view, secret });
    },
  );
  app.get(
    '/api/v1/webhooks',
    { schema: { tags: ['webhooks'], summary: "List the caller's endpoints", response: { 200: z.object({ webhooks: z.array(EndpointSchema) }), ...errorResponses } } },
    async (request) => ({ webhooks: (await webhooks.listEndpoints(userOf(request))).map(presentEndpoint) }),
  );
  app.get(
    '/api/v1/webhooks/:id',
    { schema: { tags: ['webhooks'], summary: 'One endpoint', params: Params, response: { 200: EndpointSchema, ...errorResponses } } },
    async (request) => {
      const { secret: _s, user_id: _u, ...view } = await webhooks.getEndpoint(userOf(request), request.params.id);
      return view;
    },
  );
  app.patch(
    '/api/v1/webhooks/:id',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Change an endpoint; enabled: true re-enables a disabled one',
        params: Params,
        body: z.object({ url: url.optional(), events: events.optional(), description: z.string().max(500).nullish(), enabled: z.boolean().optional() }),
        response: { 200: EndpointSchema, ...errorResponses },
      },
    },
    async (request) => presentEndpoint(await webhooks.updateEndpoint(userOf(request), request.params.id, request.body)),
  );
  app.delete(
    '/api/v1/webhooks/:id',
    { schema: { tags: ['webhooks'], summary: 'Remove an endpoint', params: Params, response: { 200: z.object({ success: z.literal(true), id: z.string() }), ...errorResponses } } },
    async (request) => {
      await webhooks.deleteEndpoint(userOf(request), request.params.id);
      return { success: true as const, id: request.params.id };
    },
  );
  app.get(
    '/api/v1/webhooks/:id/deliveries',
    {
      schema: {
        tags: ['webhooks'],
        summary: "An endpoint's deliveries, newest first",
        params: Params,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) }),
        response: { 200: z.object({ deliveries: z.array(DeliverySchema) }), ...errorResponses },
      },
    },
    async (request) => ({ deliveries: (await webhooks.deliveries(userOf(request), request.params.id, request.query.limit)).map(presentDelivery) }),
  );
  app.post(
    '/api/v1/webhooks/:id/deliveries/:delivery/redeliver',
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Send a delivery again (same webhook-id)',
        params: z.object({ id: z.string().min(1), delivery: z.string().min(1) }),
        response: { 202: DeliverySchema, ...errorResponses },
      },
    },
    async (request, reply) => reply.code(202).send(presentDelivery(await webhooks.redeliver(userOf(request), request.params.id, request.params.delivery))),
  );
  app.post(
    '/api/v1/webhooks/:id/test',
    { schema: { tags: ['webhooks'], summary: 'Send a webhook.test event', params: Params, response: { 202: DeliverySchema, ...errorResponses } } },
    async (request, reply) => reply.code(202).send(presentDelivery(await webhooks.test(userOf(request), request.params.id))),
  );
  app.post(
    '/api/v1/webhooks/signing-key',
    {
      schema: {
        tags: ['webhooks'],
        summary: "Create or replace the key that signs deliveries to jobs' own webhook_url; shown once",
        response: { 201: z.object({ secret: z.string() }).meta({ id: 'WebhookSigningKey' }), ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send({ secret: await webhooks.rotateSigningKey(userOf(request)) }),
  );
};
