import type { Config } from '../config/load.ts';
import type { Identity } from '../identity.ts';
import type { PriceTable } from '../pricing/pricing.ts';
import { Refusal } from './refusal.ts';

type Rule = Config['routing']['rules'][number];

export interface Route {
  model: string;
  /** Set when policy replaced the requested model (sent back as a response header). */
  rewrittenFrom?: string;
  reason?: 'rewrite' | 'downgrade' | 'class';
  /** The providers (config names) to try, in order, when policy names them (rule, then class). */
  providers?: string[];
  /** `budget`: providers whose own budget has no room go last. */
  providerChoice?: 'order' | 'budget';
}

/**
 * Routing policy: model classes (names of your choosing → model ids) and rules by
 * team/env/seat/workflow saying which classes an identity may use. A request may name a class
 * (`"model": "cheap"`) or a model. A model outside the allowed classes is refused
 * (`model_not_allowed`) or, where the rule says `rewrite`, replaced by the rule's default class.
 * Without rules every priced model is allowed. Prices are checked after routing: a model with
 * no price is refused whatever the policy says.
 */
export class Router {
  private readonly classOf = new Map<string, string[]>();

  constructor(
    private readonly routing: Config['routing'],
    private readonly prices: PriceTable,
  ) {
    for (const [cls, models] of Object.entries(routing.classes)) {
      for (const m of models) {
        const id = this.canonical(m);
        this.classOf.set(id, [...(this.classOf.get(id) ?? []), cls]);
      }
    }
  }

  ruleFor(id: Identity): Rule | undefined {
    return this.routing.rules.find(
      (r) =>
        (r.match.team === undefined || r.match.team === id.team) &&
        (r.match.env === undefined || r.match.env === id.env) &&
        (r.match.seat === undefined || r.match.seat === id.seat) &&
        (r.match.workflow === undefined || r.match.workflow === id.workflow),
    );
  }

  /**
   * Picks the model for a call. `utilisation` (0..1, the fullest budget of the identity) is only
   * asked for when the matching rule has a budget-aware downgrade — the one case that answers with
   * a promise (every call routes: the others need none).
   */
  route(requested: string, id: Identity, utilisation?: () => Promise<number>): Route | Promise<Route> {
    const rule = this.ruleFor(id);
    const byClass = this.routing.classes[requested];
    let route: Route = byClass
      ? { model: byClass[0]!, rewrittenFrom: requested, reason: 'class' }
      : { model: requested };
    if (rule) {
      const allowed = this.allowed(route.model, rule);
      if (!allowed) {
        const fallback = this.defaultModel(rule);
        if (rule.onViolation === 'rewrite' && fallback) {
          route = { model: fallback, rewrittenFrom: requested, reason: 'rewrite' };
        } else {
          throw new Refusal(
            'model_not_allowed',
            `model_not_allowed: ${requested} is not allowed for team '${id.team}' env '${id.env}'${
              id.workflow ? ` workflow '${id.workflow}'` : ''
            } (allowed classes: ${rule.allow.join(', ')})`,
            { model: requested, allowed_classes: rule.allow },
          );
        }
      }
      if (rule.providers) route.providers = rule.providers;
      const downgrade = rule.downgrade;
      if (downgrade && utilisation) {
        return utilisation().then((share) => {
          const cheaper = this.routing.classes[downgrade.to]?.[0];
          if (
            share >= downgrade.above &&
            cheaper &&
            this.canonical(cheaper) !== this.canonical(route.model)
          ) {
            route = {
              model: cheaper,
              rewrittenFrom: requested,
              reason: 'downgrade',
              providers: route.providers,
            };
          }
          return this.finish(route, rule, byClass ? requested : undefined);
        });
      }
    }
    return this.finish(route, rule, byClass ? requested : undefined);
  }

  /** The route's providers (the class's or the model's when the rule names none) and how to choose. */
  private finish(route: Route, rule: Rule | undefined, cls: string | undefined): Route {
    if (!route.providers) {
      const providers = this.providersOf(cls, route.model);
      if (providers) route.providers = providers;
    }
    route.providerChoice = rule?.providerChoice ?? this.routing.providerChoice ?? 'order';
    return route;
  }

  /** The providers a model class names (`routing.providers`): the class asked for, else the model's first class with a list. */
  private providersOf(cls: string | undefined, model: string): string[] | undefined {
    const lists = this.routing.providers ?? {};
    if (cls && lists[cls]) return lists[cls];
    for (const c of this.classOf.get(this.canonical(model)) ?? []) if (lists[c]) return lists[c];
    return undefined;
  }

  /** True when policy lets this identity call `model` (every model when no rule matches). */
  allows(model: string, id: Identity): boolean {
    const rule = this.ruleFor(id);
    return !rule || this.allowed(model, rule);
  }

  private allowed(model: string, rule: Rule): boolean {
    const classes = this.classOf.get(this.canonical(model)) ?? [];
    return classes.some((c) => rule.allow.includes(c));
  }

  private defaultModel(rule: Rule): string | undefined {
    const cls = rule.default ?? rule.allow[0];
    return cls ? this.routing.classes[cls]?.[0] : undefined;
  }

  private canonical(model: string): string {
    return this.prices.lookup(model)?.model ?? model;
  }
}
