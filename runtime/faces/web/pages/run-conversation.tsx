import type { JournalView, RunView } from '../../views/runs.ts';
import { Clip, offset, pretty } from './run-parts.tsx';

/** A run's conversation: its input, then every model turn (text and tool calls) and tool result. */

interface Block {
  type?: string;
  text?: string;
  thinking?: string;
  name?: string;
  input?: unknown;
}

function ModelTurn(props: { result: unknown }) {
  const r = props.result as { message?: { content?: unknown } } | null;
  const content = r?.message?.content;
  if (!Array.isArray(content)) return <Clip text={pretty(props.result)} />;
  if (content.length === 0) return <p class="muted">(no content)</p>;
  return (
    <>
      {(content as Block[]).map((b) => {
        if (b.type === 'text') return <Clip text={b.text ?? ''} />;
        if (b.type === 'tool_use')
          return <Clip class="call" text={`→ ${b.name ?? '?'}(${JSON.stringify(b.input ?? {})})`} />;
        if (b.type === 'thinking') return <Clip class="thinking" text={b.thinking ?? ''} />;
        return <Clip text={pretty(b)} />;
      })}
    </>
  );
}

function ToolTurn(props: { result: unknown }) {
  const r = props.result as { content?: unknown; isError?: boolean } | null;
  if (!r || typeof r !== 'object' || !('content' in r)) return <Clip text={pretty(props.result)} />;
  return (
    <>
      {r.isError ? <p class="outcome error">The tool answered with an error:</p> : null}
      <Clip text={pretty(r.content)} />
    </>
  );
}

export function Conversation(props: { run: RunView; journal: JournalView[]; start: number }) {
  const { run, journal, start } = props;
  return (
    <ol class="conversation">
      {run.input === undefined ? null : (
        <li class="input">
          <p class="who">
            <strong>Input</strong>
          </p>
          <Clip text={pretty(run.input)} />
        </li>
      )}
      {journal.map((j, i) => (
        <li class={j.kind} id={`msg-${i + 1}`}>
          <p class="who">
            <strong>{j.kind === 'model' ? `Model ${j.name}` : `Tool ${j.name}`}</strong>{' '}
            <small>
              <a href={`#step-${i + 1}`}>step {i + 1}</a> · {offset(Date.parse(j.at) - start)}
            </small>
          </p>
          {j.kind === 'model' ? <ModelTurn result={j.result} /> : <ToolTurn result={j.result} />}
        </li>
      ))}
    </ol>
  );
}
