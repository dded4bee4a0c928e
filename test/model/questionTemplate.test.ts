/** The checkpoint's own question template: used when present, Llama-3.1 chat otherwise, a bad one named. */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { llama31TokenizerDir } from '../../tools/fixture';
import { QUESTION_TEMPLATE_FILE, loadQuestionTemplate, questionPrompt } from '../../src/model/questionTemplate';
import { TextTokenizer } from '../../src/model/tokenizer';
import { rmDir, tmpDir } from '../helpers/tmp';

describe('question template', () => {
  let dir: string;
  let tok: TextTokenizer;
  before(async () => {
    dir = tmpDir('qtemplate');
    tok = await TextTokenizer.fromDir(llama31TokenizerDir() as string);
  });
  after(() => rmDir(dir));

  it('no template file: the Llama-3.1 chat format', () => {
    const t = loadQuestionTemplate(dir);
    assert.strictEqual(t, null);
    assert.deepStrictEqual(questionPrompt(tok, t, 'Where is x?', 'sys'), tok.chatPrompt('Where is x?', 'sys'));
  });

  it('a template file: its text with the question in place, nothing added', () => {
    fs.writeFileSync(path.join(dir, QUESTION_TEMPLATE_FILE), 'Q: {question}\nA: ');
    const t = loadQuestionTemplate(dir);
    assert.deepStrictEqual(questionPrompt(tok, t, 'Where is x?', 'sys'), tok.encode('Q: Where is x?\nA: '));
  });

  it('a template without {question} is refused, naming the file', () => {
    fs.writeFileSync(path.join(dir, QUESTION_TEMPLATE_FILE), 'Q: \nA: ');
    assert.throws(() => loadQuestionTemplate(dir), (e: Error) => e.message.includes(QUESTION_TEMPLATE_FILE) && e.message.includes('{question}'));
  });
});
