import { Items } from './items'

export default function ItemsPage() {
  return <Items />
}
