import { SignIn } from './sign-in'

export default function Home() {
  return <SignIn />
}
