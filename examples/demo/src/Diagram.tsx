/**
 * The state diagram, drawn from the engine's own `transitions` table: one node per status, one
 * arrow per (from, to) pair labelled with the events that take it. Nothing here is drawn by hand;
 * a status or event added to the table shows up on its own.
 */
import { useState, useSyncExternalStore } from 'react';
import { toMermaid, transitions, type AuthStatus } from 'tessera';
import { useSession } from 'tessera/react';
import { transitionStore } from './engine.ts';

const W = 720;
const H = 440;
const CX = W / 2;
const CY = H / 2 + 4;
const RX = 255; // layout ellipse
const RY = 158;
const NX = 74; // node ellipse
const NY = 22;

const states = Object.keys(transitions) as AuthStatus[];

interface Edge {
  from: AuthStatus;
  to: AuthStatus;
  events: string[];
}

/** Edges grouped by (from, to), in table order. */
const edges: Edge[] = [];
for (const from of states) {
  for (const [event, to] of Object.entries(transitions[from]) as [string, AuthStatus][]) {
    const edge = edges.find((e) => e.from === from && e.to === to);
    if (edge) edge.events.push(event);
    else edges.push({ from, to, events: [event] });
  }
}

const pos = new Map(
  states.map((s, i) => {
    const a = -Math.PI / 2 + (i * 2 * Math.PI) / states.length;
    return [s, { x: CX + RX * Math.cos(a), y: CY + RY * Math.sin(a) }] as const;
  }),
);

/** Where the ray from the node's centre towards (tx, ty) leaves the node's ellipse. */
function rim(c: { x: number; y: number }, tx: number, ty: number, pad = 0) {
  const dx = tx - c.x;
  const dy = ty - c.y;
  const t = 1 / Math.sqrt((dx / (NX + pad)) ** 2 + (dy / (NY + pad)) ** 2);
  return { x: c.x + dx * t, y: c.y + dy * t };
}

interface Drawn {
  d: string;
  lx: number;
  ly: number;
  anchor: 'start' | 'middle' | 'end';
}

function draw(edge: Edge): Drawn {
  const a = pos.get(edge.from)!;
  const b = pos.get(edge.to)!;
  if (edge.from === edge.to) {
    // A loop on the outer side of the node.
    const ox = a.x - CX;
    const oy = a.y - CY;
    const len = Math.hypot(ox, oy) || 1;
    const ux = ox / len;
    const uy = oy / len;
    const p1 = rim(a, a.x + ux * 10 - uy * 10, a.y + uy * 10 + ux * 10);
    const p2 = rim(a, a.x + ux * 10 + uy * 10, a.y + uy * 10 - ux * 10);
    const c1 = { x: p1.x + ux * 60 - uy * 40, y: p1.y + uy * 60 + ux * 40 };
    const c2 = { x: p2.x + ux * 60 + uy * 40, y: p2.y + uy * 60 - ux * 40 };
    const lx = a.x + ux * 62;
    const ly = a.y + uy * 62;
    return { d: `M${p1.x},${p1.y} C${c1.x},${c1.y} ${c2.x},${c2.y} ${p2.x},${p2.y}`, lx, ly: ly + (uy > 0 ? 18 : -6), anchor: 'middle' };
  }
  // A gentle curve to the right of the direction of travel, so a→b and b→a do not overlap.
  const mx = (a.x + b.x) / 2;
  const my = (a.y + b.y) / 2;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy) || 1;
  const bend = 26;
  const cx = mx - (dy / len) * bend;
  const cy = my + (dx / len) * bend;
  const p1 = rim(a, cx, cy);
  const p2 = rim(b, cx, cy, 3);
  const lx = (p1.x + 2 * cx + p2.x) / 4;
  const ly = (p1.y + 2 * cy + p2.y) / 4;
  return { d: `M${p1.x},${p1.y} Q${cx},${cy} ${p2.x},${p2.y}`, lx, ly, anchor: 'middle' };
}

const drawn = edges.map((e) => ({ edge: e, ...draw(e) }));

export function Diagram() {
  const status = useSession((s) => s.status);
  const refreshing = useSession((s) => s.refreshing);
  const last = useSyncExternalStore(transitionStore.subscribe, transitionStore.get);
  const [copied, setCopied] = useState(false);
  // The last step is lit: orange, or blue when it is an ordinary one (a first visit with no stored session).
  const tone = last?.calm ? 'calm' : 'hot';
  const mermaid = toMermaid();
  const isLast = (e: Edge, event?: string) =>
    !!last && last.from === e.from && last.to === e.to && (event === undefined ? e.events.includes(last.event) : last.event === event);

  const copy = async () => {
    try {
      await navigator.clipboard.writeText(mermaid);
      setCopied(true);
      setTimeout(() => setCopied(false), 2_000);
    } catch {
      setCopied(false);
    }
  };
  const download = () => {
    const url = URL.createObjectURL(new Blob([mermaid + '\n'], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'tessera-states.mmd';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1_000);
  };

  return (
    <section className="card diagram" aria-labelledby="diagram-title">
      <h2 id="diagram-title">Session states</h2>
      <p className="hint">
        Drawn from the engine's <code>transitions</code> table. Now: <strong data-testid="diagram-status">{status}</strong>
        {refreshing ? <span className="badge refreshing"> refreshing</span> : null}
        {last ? (
          <>
            {' '}
            · last: <code data-testid="last-transition">{`${last.event}: ${last.from} → ${last.to}`}</code>
            {last.calm ? <span data-testid="last-transition-note"> (no stored session yet, nothing went wrong)</span> : null}
          </>
        ) : null}
      </p>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`State diagram; the session is ${status}`} data-testid="diagram">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#8a94a6" />
          </marker>
          <marker id="arrow-hot" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#d9480f" />
          </marker>
          <marker id="arrow-calm" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#1c5fd6" />
          </marker>
        </defs>
        {drawn.map(({ edge, d }) => {
          const hot = isLast(edge);
          return (
            <path
              key={`${edge.from}-${edge.to}`}
              d={d}
              className={hot ? `edge ${tone}` : 'edge'}
              data-from={edge.from}
              data-to={edge.to}
              markerEnd={hot ? `url(#arrow-${tone})` : 'url(#arrow)'}
            >
              <title>{`${edge.from} → ${edge.to}: ${edge.events.join(', ')}`}</title>
            </path>
          );
        })}
        {drawn.map(({ edge, lx, ly, anchor }) => (
          <text key={`l-${edge.from}-${edge.to}`} x={lx} y={ly} textAnchor={anchor} className={isLast(edge) ? `edge-label ${tone}` : 'edge-label'}>
            {edge.events.length > 2 ? (
              isLast(edge) ? last!.event : `${edge.events.length} events`
            ) : (
              edge.events.map((ev, i) => (
                <tspan key={ev} x={lx} dy={i === 0 ? 0 : 12} className={isLast(edge, ev) ? tone : undefined}>
                  {ev}
                </tspan>
              ))
            )}
          </text>
        ))}
        {states.map((s) => {
          const p = pos.get(s)!;
          const current = s === status;
          return (
            <g key={s} className={current ? 'node current' : 'node'} data-state={s} aria-current={current ? 'true' : undefined}>
              <ellipse cx={p.x} cy={p.y} rx={NX} ry={NY} />
              <text x={p.x} y={p.y + 5} textAnchor="middle">
                {s}
              </text>
            </g>
          );
        })}
      </svg>
      <details className="table-details">
        <summary>Every transition, as a table</summary>
        <div className="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">from</th>
                <th scope="col">event</th>
                <th scope="col">to</th>
              </tr>
            </thead>
            <tbody>
              {states.flatMap((from) =>
                (Object.entries(transitions[from]) as [string, AuthStatus][]).map(([event, to]) => {
                  const hot = !!last && last.from === from && last.event === event;
                  return (
                    <tr key={`${from}-${event}`} className={[from === status ? 'here' : '', hot ? tone : ''].join(' ').trim() || undefined}>
                      <td>{from}</td>
                      <td>
                        <code>{event}</code>
                      </td>
                      <td>{to}</td>
                    </tr>
                  );
                }),
              )}
            </tbody>
          </table>
        </div>
      </details>
      <details className="mermaid">
        <summary>
          As Mermaid (<code>toMermaid()</code>)
        </summary>
        <pre data-testid="mermaid">{mermaid}</pre>
        <div className="row">
          <button type="button" onClick={copy}>
            {copied ? 'Copied' : 'Copy'}
          </button>
          <button type="button" onClick={download}>
            Download .mmd
          </button>
        </div>
      </details>
    </section>
  );
}
